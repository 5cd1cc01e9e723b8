// glibc malloc: symbols resolved with dlsym (never linked), so the addon loads on any
// glibc, with or without mallinfo2, under a preloaded allocator, and on musl.
#pragma once

#include <napi.h>

#include <cstddef>

namespace allocstats {

struct Mallinfo {
  const char* source = nullptr;  // "mallinfo2", "mallinfo", "malloc_info", or nullptr if none exists
  size_t arena = 0, ordblks = 0, smblks = 0, hblks = 0, hblkhd = 0;
  size_t usmblks = 0, fsmblks = 0, uordblks = 0, fordblks = 0, keepcost = 0;
};

// mallinfo2() where it exists (glibc >= 2.33), else mallinfo() whose int fields wrap past
// 2 GiB. Costs O(free chunks) and locks every arena.
bool GlibcMallinfo(Mallinfo& out);
const char* GlibcVersion();  // nullptr when not glibc
// Whether `block` lies in one of glibc's arenas ([heap] below the break, or a thread-arena
// heap with a valid header). Lock-free, unlike the counters, which walk every free chunk.
bool GlibcArenaHolds(const void* block);
// Whether glibc serves malloc(): the arena check, else its counters around a probe block.
// `how` (if given) says which decided.
bool GlibcServes(const char** how = nullptr);

}  // namespace allocstats
