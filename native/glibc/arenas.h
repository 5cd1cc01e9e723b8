// Where glibc's arenas live and how much of them is resident: the main arena ([heap], below
// the break) and the thread arenas' heaps, found from /proc/self/maps and validated heap_info
// headers, measured with mincore(). Lock-free, unlike the counters, which walk every free chunk.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "core/backend.h"
#include "core/procfs.h"
#include "glibc/counters.h"

namespace allocstats {

// The stable prefix of glibc's heap_info, the header at the start of every thread-arena heap.
struct HeapInfoPrefix {
  uintptr_t arena;     // mstate ar_ptr
  uintptr_t prev;      // previous heap of the same arena, or 0
  size_t size;         // bytes in use by the heap (read/write part)
  size_t mprotectSize; // bytes made read/write so far
};

// Where glibc's arenas live, found from /proc/self/maps and validated heap headers; rescanned
// only when glibc's own total (mallinfo.arena) says the set changed.
struct GlibcState : BackendState {
  std::mutex mutex;
  bool scanned = false;
  bool mapsRead = false;  // false: /proc/self/maps was unreadable, so nothing is known
  uintptr_t heapStart = 0;  // start of [heap] (main arena), 0 if there is none
  // Bytes between the end of [heap] and the next mapping when the maps were read (-1: none
  // above it): how far brk() could still grow the main arena. When it cannot, glibc continues
  // the arena in mmap()ed memory outside [heap].
  double breakRoom = -1;
  std::vector<uintptr_t> heaps;
  // Reused by every measurement, so that a sample mallocs nothing (and leaves no free chunk
  // behind for the next mallinfo2() walk to count).
  std::vector<unsigned char> scratch;
  std::vector<HeapInfoPrefix> infos;
  std::vector<void*> destinations;
  std::vector<uintptr_t> arenaIds;
  std::vector<uintptr_t> prevs;
  uint64_t scans = 0;
  // The last residency measurement, kept for JS-thread samples that accept one of bounded age.
  struct Kept {
    bool valid = false;
    double at = 0;  // NowNs() when measured
    uintptr_t brk = 0;
    bool counted = false;  // whether `arena` was read (a sample) or not (the gauge after a trim)
    size_t arena = 0;      // mallinfo.arena then: glibc's total of arena memory
    double mainMapped = 0, mainResident = 0, threadMapped = 0, threadResident = 0, threadTail = 0;
    uint32_t heaps = 0, arenas = 0;
  } kept;
};

struct ArenaMeasure {
  bool ok = false;
  double mainMapped = -1, mainResident = -1;
  double threadMapped = -1, threadResident = -1;
  // Non-resident bytes that end each arena's newest heap: the untouched end of its top chunk
  // (a new heap is what was asked plus M_TOP_PAD), and below it any allocated pages never written.
  double threadTail = -1;
  double breakRoom = -1;
  uint32_t heaps = 0, arenas = 0;
  bool matchesMallinfo = false;
  uint64_t scans = 0;
};


// Without `mi` (around a trim) nothing is compared with glibc's total: the region list found
// by the last sample stands, with every heap header checked again.
void MeasureArenas(GlibcState& s, const ProcFiles* files, const Mallinfo* mi, ArenaMeasure& out);
// The last measurement instead, when at most `maxAgeNs` old and still standing for the arenas.
bool ReuseArenas(GlibcState& s, const Mallinfo& mi, double maxAgeNs, ArenaMeasure& out, double& ageNs);
// Whether `block` lies in one of glibc's arenas ([heap] below the break, or a thread-arena
// heap with a valid header).
bool GlibcArenaHolds(const void* block);

}  // namespace allocstats
