// What a backend's extra function takes and returns, with no JS engine in sight: the Node layer
// converts these to and from JS values, the core test program prints them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace allocstats {

struct Value {
  enum class Kind { Undefined, Null, Bool, Number, Int64, Uint64, String, Array, Object, Float64Array };
  Kind kind = Kind::Undefined;
  bool flag = false;
  double number = 0;
  int64_t int64 = 0;    // an integral JS number (converted arguments only)
  uint64_t uint64 = 0;  // crosses as a bigint
  std::string text;
  std::vector<Value> items;                           // Array
  std::vector<std::pair<std::string, Value>> fields;  // Object, in insertion order
  std::vector<double> numbers;                        // Float64Array

  static Value Null() { return Of(Kind::Null, [](Value&) {}); }
  static Value Bool(bool b) { return Of(Kind::Bool, [&](Value& v) { v.flag = b; }); }
  static Value Number(double d) { return Of(Kind::Number, [&](Value& v) { v.number = d; }); }
  static Value Int64(int64_t i) { return Of(Kind::Int64, [&](Value& v) { v.int64 = i; }); }
  static Value BigInt(uint64_t u) { return Of(Kind::Uint64, [&](Value& v) { v.uint64 = u; }); }
  static Value String(std::string s) { return Of(Kind::String, [&](Value& v) { v.text = std::move(s); }); }
  // A string, or null when there is none.
  static Value StringOrNull(const char* s) { return s != nullptr ? String(s) : Null(); }
  static Value Array(std::vector<Value> items = {}) {
    return Of(Kind::Array, [&](Value& v) { v.items = std::move(items); });
  }
  static Value Object() { return Of(Kind::Object, [](Value&) {}); }
  static Value Floats(std::vector<double> numbers) {
    return Of(Kind::Float64Array, [&](Value& v) { v.numbers = std::move(numbers); });
  }
  static Value Strings(const char* const* names, size_t count) {
    Value v = Array();
    for (size_t i = 0; i < count; i++) v.items.push_back(String(names[i]));
    return v;
  }

  Value& Set(const char* name, Value value) {
    fields.emplace_back(name, std::move(value));
    return *this;
  }
  bool is(Kind k) const { return kind == k; }

 private:
  template <typename Fill>
  static Value Of(Kind k, Fill fill) {
    Value v;
    v.kind = k;
    fill(v);
    return v;
  }
};

}  // namespace allocstats
