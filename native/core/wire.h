// The wire format: every record that crosses into JS is a Float64Array whose fields are
// declared once, as an X-macro list; the same list gives the C++ indices and the names the
// addon exports, so TypeScript decodes by name. Unknown is NaN (null in JS); flags are 0/1.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace allocstats {

#define ALLOCSTATS_FIELD_INDEX(name) name,
#define ALLOCSTATS_FIELD_NAME(name) #name,

// Declares `struct Tag { enum : size_t { a, b, ..., kCount }; static const char* const kNames[]; }`.
// (kNames ends with a nullptr so that an empty list is still a valid array.)
#define ALLOCSTATS_DECLARE_FIELDS(Tag, LIST)                                       \
  struct Tag {                                                                     \
    enum : size_t { LIST(ALLOCSTATS_FIELD_INDEX) kCount };                         \
    static constexpr const char* kNames[] = {LIST(ALLOCSTATS_FIELD_NAME) nullptr}; \
  }
#define ALLOCSTATS_NO_FIELDS(X)

struct FieldNames {
  const char* const* names;
  size_t count;
};

template <typename Tag>
constexpr FieldNames NamesOf() {
  return FieldNames{Tag::kNames, Tag::kCount};
}

constexpr double kUnknown = NAN;

// A record being filled: `fields` named values followed by an optional variable-length tail.
struct Record {
  std::vector<double> values;
  std::vector<double> tail;
  void Reset(size_t count) { values.assign(count, kUnknown), tail.clear(); }
  double& operator[](size_t i) { return values[i]; }
};

}  // namespace allocstats
