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

  static Value Null() { return Of(Kind::Null); }
  static Value Bool(bool b) {
    Value v = Of(Kind::Bool);
    v.flag = b;
    return v;
  }
  static Value Number(double d) {
    Value v = Of(Kind::Number);
    v.number = d;
    return v;
  }
  static Value Int64(int64_t i) {
    Value v = Of(Kind::Int64);
    v.int64 = i;
    return v;
  }
  static Value BigInt(uint64_t u) {
    Value v = Of(Kind::Uint64);
    v.uint64 = u;
    return v;
  }
  static Value String(std::string s) {
    Value v = Of(Kind::String);
    v.text = std::move(s);
    return v;
  }
  // A string, or null when there is none.
  static Value StringOrNull(const char* s) { return s != nullptr ? String(s) : Null(); }
  static Value Array(std::vector<Value> items = {}) {
    Value v = Of(Kind::Array);
    v.items = std::move(items);
    return v;
  }
  static Value Object() { return Of(Kind::Object); }
  static Value Floats(std::vector<double> numbers) {
    Value v = Of(Kind::Float64Array);
    v.numbers = std::move(numbers);
    return v;
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
  static Value Of(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

}  // namespace allocstats
