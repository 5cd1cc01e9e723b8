#include "agent/json.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace allocstats {
namespace agent {

void AppendQuoted(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char escape[8];
      snprintf(escape, sizeof escape, "\\u%04x", c);
      out += escape;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

void AppendNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buffer[32];
  snprintf(buffer, sizeof buffer, "%.17g", v);
  out += buffer;
}

void AppendNumbers(std::string& out, const double* values, size_t count) {
  out += '[';
  for (size_t i = 0; i < count; i++) {
    if (i) out += ',';
    AppendNumber(out, values[i]);
  }
  out += ']';
}

void AppendNames(std::string& out, FieldNames names) {
  out += '[';
  for (size_t i = 0; i < names.count; i++) {
    if (i) out += ',';
    AppendQuoted(out, names.names[i]);
  }
  out += ']';
}

void AppendValue(std::string& out, const Value& value) {
  char buffer[32];
  switch (value.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::Null:
      out += "null";
      return;
    case Value::Kind::Bool:
      out += value.flag ? "true" : "false";
      return;
    case Value::Kind::Number:
      AppendNumber(out, value.number);
      return;
    case Value::Kind::Int64:
      snprintf(buffer, sizeof buffer, "%" PRId64, value.int64);
      out += buffer;
      return;
    case Value::Kind::Uint64:
      // A bigint in JS: a string here, so that no digit is lost.
      snprintf(buffer, sizeof buffer, "\"%" PRIu64 "\"", value.uint64);
      out += buffer;
      return;
    case Value::Kind::String:
      AppendQuoted(out, value.text);
      return;
    case Value::Kind::Array:
      out += '[';
      for (size_t i = 0; i < value.items.size(); i++) {
        if (i) out += ',';
        AppendValue(out, value.items[i]);
      }
      out += ']';
      return;
    case Value::Kind::Object:
      out += '{';
      for (size_t i = 0; i < value.fields.size(); i++) {
        if (i) out += ',';
        AppendQuoted(out, value.fields[i].first);
        out += ':';
        AppendValue(out, value.fields[i].second);
      }
      out += '}';
      return;
    case Value::Kind::Float64Array:
      AppendNumbers(out, value.numbers.data(), value.numbers.size());
      return;
  }
  out += "null";
}

bool SplitWords(const std::string& line, std::vector<std::string>& words) {
  words.clear();
  std::string word;
  for (unsigned char c : line) {
    if (c == ' ' || c == '\t' || c == '\r') {
      if (!word.empty()) words.push_back(word), word.clear();
    } else if (c < 0x21 || c > 0x7e) {
      return false;
    } else {
      word += static_cast<char>(c);
    }
  }
  if (!word.empty()) words.push_back(word);
  return true;
}

bool ParseNumber(const std::string& word, double& out) {
  if (word == "nan") {
    out = NAN;
    return true;
  }
  if (word.empty()) return false;
  char* end = nullptr;
  out = strtod(word.c_str(), &end);
  return end != nullptr && *end == '\0' && std::isfinite(out);
}

}  // namespace agent
}  // namespace allocstats
