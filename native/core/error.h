// The one error type of the core and the backends: a stable code and a message. The Node layer
// turns it into the JS error callers see (same code, same message); nothing here knows JS.
#pragma once

#include <stdexcept>
#include <string>

namespace allocstats {

class CodedError : public std::runtime_error {
 public:
  // Which JS error class it becomes: the kind of mistake, as TypeError and RangeError say it.
  enum class Kind { Error, Type, Range };

  CodedError(const char* code, const std::string& message, Kind kind = Kind::Error)
      : std::runtime_error(message), code_(code), kind_(kind) {}

  const char* code() const { return code_; }
  Kind kind() const { return kind_; }

 private:
  const char* code_;  // a literal: codes are a fixed list
  Kind kind_;
};

}  // namespace allocstats
