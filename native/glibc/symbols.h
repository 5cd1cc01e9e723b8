// glibc malloc's functions, resolved with dlsym (never linked), so the addon loads on any
// glibc, with or without mallinfo2, under a preloaded allocator, and on musl.
#pragma once

#include <cstddef>
#include <cstdio>

namespace allocstats {

// Layouts as declared in glibc's <malloc.h>; declared here so the source also builds on musl.
struct Mallinfo2Raw {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct MallinfoRaw {
  int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

struct GlibcApi {
  Mallinfo2Raw (*mallinfo2)() = nullptr;
  MallinfoRaw (*mallinfo)() = nullptr;
  int (*mallocTrim)(size_t) = nullptr;
  int (*mallocInfo)(int, FILE*) = nullptr;
  int (*mallopt)(int, int) = nullptr;
  const char* (*version)() = nullptr;
};

// Resolved once per process; immutable afterwards.
const GlibcApi& Api();

}  // namespace allocstats
