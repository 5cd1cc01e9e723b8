// glibc's own counters: mallinfo2() where it exists (glibc >= 2.33), else mallinfo() whose int
// fields wrap past 2 GiB; the record they cross in; whether glibc serves malloc().
#pragma once

#include <cstddef>

#include "core/wire.h"

namespace allocstats {

struct Mallinfo {
  const char* source = nullptr;  // "mallinfo2", "mallinfo", "malloc_info", or nullptr if none exists
  size_t arena = 0, ordblks = 0, smblks = 0, hblks = 0, hblkhd = 0;
  size_t usmblks = 0, fsmblks = 0, uordblks = 0, fordblks = 0, keepcost = 0;
};

// Costs O(free chunks) and locks every arena.
bool GlibcMallinfo(Mallinfo& out);
const char* GlibcVersion();  // nullptr when not glibc
// Whether glibc serves malloc(): the arena check, else its counters around a probe block.
// `how` (if given) says which decided.
bool GlibcServes(const char** how = nullptr);

// <malloc.h> order; shared by a sample and by glibc.mallinfo2().
#define MALLINFO_FIELDS(X) X(arena) X(ordblks) X(smblks) X(hblks) X(hblkhd) X(usmblks) X(fsmblks) X(uordblks) X(fordblks) X(keepcost)
// source: where the counters came from, an index into MALLINFO_SOURCES (0: none).
#define MALLINFO_SOURCES(X) X(none) X(mallinfo2) X(mallinfo) X(malloc_info)
ALLOCSTATS_DECLARE_FIELDS(Source, MALLINFO_SOURCES);
#define MALLINFO_RECORD(X) X(source) MALLINFO_FIELDS(X)
ALLOCSTATS_DECLARE_FIELDS(MallinfoRecord, MALLINFO_RECORD);

// Writes MALLINFO_RECORD's fields starting at out[0].
void PutMallinfo(double* out, const Mallinfo& mi);

}  // namespace allocstats
