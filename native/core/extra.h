// A backend's own functions (mallctl, mallopt, options...) as a table of descriptors: a name,
// how it is called, what its arguments are, and a plain function from core values to a core
// value. The Node layer makes each one a JS function; nothing here knows JS.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/value.h"

namespace allocstats {

struct BackendState;
class ProcFiles;

// What an argument must be before the function may see it. A value of the wrong type (a missing
// argument included) is refused at the boundary with ERR_INVALID_ARG_TYPE (a TypeError), a number
// or bigint of the right type but outside what the kind holds with ERR_OUT_OF_RANGE (a
// RangeError); both with the parameter's message.
struct Param {
  enum class Kind {
    String,
    Strings,         // an array of strings (elementMessage when an element is not one)
    Int32,           // any number, converted as JS ToInt32 does
    Int64,           // any number, converted to an int64 (NaN and ±Infinity become 0)
    Integer,         // a whole finite number, as an int64
    OptionalFinite,  // a finite number, or anything but a number for none
    Any,             // undefined, null, boolean, number, bigint below 2^64 or string
  };
  Kind kind;
  const char* message;
  const char* elementMessage = nullptr;
};

struct ExtraCall {
  std::vector<Value> args;  // converted as the parameters say; a number under Any is an Int64
                            // when it is a whole number in int64's range, a Number otherwise
  std::shared_ptr<BackendState> state;  // this environment's state of the backend
  std::shared_ptr<ProcFiles> files;
};

struct Extra {
  enum class Kind {
    Sync,      // `name`, on the JS thread
    Pair,      // `name` on the threadpool (a Promise) and `nameSync` on the JS thread
    Constant,  // `name` is `constant`, set once
  };
  std::string name;
  Kind kind = Kind::Sync;
  std::vector<Param> params;
  // Checked before the arguments are, on the JS thread: throws when the function has nothing to
  // call in this process.
  std::function<void()> require;
  // Touches nothing of the environment: for a Pair it runs on the threadpool.
  std::function<Value(const ExtraCall&)> run;
  Value constant;
};

using Extras = std::vector<Extra>;

}  // namespace allocstats
