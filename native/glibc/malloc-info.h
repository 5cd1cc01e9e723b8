// malloc_info()'s XML as rows of numbers, so that no large string crosses into JS.
// Each row is kRowWidth doubles: kind, arena (heap nr, -1 for the process totals), a, b, c, d;
// the kinds and the width are exported by name (glibcMallocInfoRow) for src/allocators/glibc/mallocinfo.ts.
// A row's kind is its index in this list.
#pragma once

#include <string>
#include <vector>

#include "core/wire.h"
#include "glibc/counters.h"

namespace allocstats {

#define MALLOC_INFO_ROW_KINDS(X) X(none) X(bucket) X(unsorted) X(totalFast) X(totalRest) X(totalMmap) X(systemCurrent) X(systemMax)
ALLOCSTATS_DECLARE_FIELDS(RowKind, MALLOC_INFO_ROW_KINDS);
#define MALLOC_INFO_ROW_FIELDS(X) X(kind) X(arena) X(a) X(b) X(c) X(d)
ALLOCSTATS_DECLARE_FIELDS(Row, MALLOC_INFO_ROW_FIELDS);
constexpr size_t kRowWidth = Row::kCount;

// Empty when this glibc has no malloc_info().
std::string MallocInfoXml();
void ParseMallocInfo(const std::string& xml, std::vector<double>& rows);
// malloc_info()'s process totals are mallinfo2()'s counters. When both are wanted, taking them
// from one walk halves the time spent holding each arena's lock (threads that allocate in that
// arena wait meanwhile).
bool MallinfoFromRows(const std::vector<double>& rows, Mallinfo& out);

}  // namespace allocstats
