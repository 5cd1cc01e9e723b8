#include "glibc/arenas.h"

#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/clock.h"
#include "core/maps.h"
#include "glibc/symbols.h"

namespace allocstats {

namespace {

// Thread-arena heaps are HEAP_MAX_SIZE-aligned mappings (2 * DEFAULT_MMAP_THRESHOLD_MAX).
constexpr uintptr_t kHeapMax = sizeof(long) == 8 ? (64u << 20) : (1u << 20);

bool PlausibleHeap(const HeapInfoPrefix& h, uintptr_t at) {
  const size_t page = PageSize();
  return h.size >= page && h.size <= kHeapMax && h.size % page == 0 && h.mprotectSize >= h.size &&
         h.mprotectSize <= kHeapMax && h.mprotectSize % page == 0 && h.arena != 0 && h.prev != at;
}

// The first heap of an arena holds the arena's malloc_state right after its header.
bool IsFirstHeap(const HeapInfoPrefix& h, uintptr_t at) {
  return h.prev == 0 && h.arena > at && h.arena <= at + 128;
}

// The end of the main program's segments in memory (its bss included), page-aligned: the
// lowest address the program break can have. 0 if unknown.
uintptr_t ProgramEnd() {
  uintptr_t end = 0;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        uintptr_t& out = *static_cast<uintptr_t*>(data);
        for (int i = 0; i < info->dlpi_phnum; i++) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type == PT_LOAD) out = std::max<uintptr_t>(out, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
        }
        return 1;  // the first object is the main program
      },
      &end);
  const uintptr_t page = PageSize();
  return (end + page - 1) & ~(page - 1);
}

struct Candidate {
  uintptr_t at;
  HeapInfoPrefix info;
};

// Anonymous mappings, in address order, merged where they touch: a heap's reservation is its
// read/write part followed by the PROT_NONE rest, both anonymous.
struct Layout {
  std::vector<Mapping> anonymousSpans;
  std::vector<Mapping> readWrite;  // the anonymous read/write ones, where heaps can start
  std::vector<uintptr_t> starts;   // of every mapping, in address order
  uintptr_t heapEnd = 0;           // end of [heap]
};

void ReadLayout(const std::vector<Mapping>& maps, GlibcState& s, Layout& out) {
  for (const Mapping& m : maps) {
    out.starts.push_back(m.start);
    if (m.heap) {
      if (s.heapStart == 0) s.heapStart = m.start, out.heapEnd = m.end;
    } else if (m.anonymous) {
      if (!out.anonymousSpans.empty() && out.anonymousSpans.back().end == m.start) {
        out.anonymousSpans.back().end = m.end;
      } else {
        out.anonymousSpans.push_back(m);
      }
      if (m.readWrite) out.readWrite.push_back(m);
    }
  }
}

// No [heap] line (qemu-user shows the program break's area unlabelled, merged with the
// program's bss): the main arena is the anonymous read/write mapping that holds the break,
// from the end of the program's own segments on.
void MainArenaFromBreak(GlibcState& s, Layout& layout) {
  const uintptr_t brk = reinterpret_cast<uintptr_t>(sbrk(0));
  const uintptr_t programEnd = ProgramEnd();
  for (const Mapping& rw : layout.readWrite) {
    if (programEnd == 0 || brk <= programEnd) break;
    if (rw.start < brk && brk <= rw.end && rw.end > programEnd) {
      s.heapStart = std::max(rw.start, programEnd);
      layout.heapEnd = rw.end;
      break;
    }
  }
}

// How far the break can grow: the gap from the end of the main arena to the next mapping.
double BreakRoom(const Layout& layout) {
  if (layout.heapEnd == 0) return -1;
  auto above = std::lower_bound(layout.starts.begin(), layout.starts.end(), layout.heapEnd);
  return above != layout.starts.end() ? static_cast<double>(*above - layout.heapEnd) : -1;
}

// A heap's header is read after the maps were: a heap that grew in between reaches past its
// read/write part as the maps showed it, but never past its reservation.
bool Reserved(const Layout& layout, uintptr_t at, size_t length) {
  for (const Mapping& span : layout.anonymousSpans) {
    if (span.start <= at && at < span.end) return at + length <= span.end;
  }
  return false;
}

std::vector<Candidate> FindCandidates(const Layout& layout, const ProcFiles* files) {
  std::vector<Candidate> candidates;
  for (const Mapping& rw : layout.readWrite) {
    // A heap's read/write part may have merged with a neighbouring anonymous mapping,
    // so try every aligned address inside it.
    for (uintptr_t at = (rw.start + kHeapMax - 1) & ~(kHeapMax - 1); at < rw.end; at += kHeapMax) {
      HeapInfoPrefix info;
      if (SafeRead(files, &info, at, sizeof info) && PlausibleHeap(info, at) && Reserved(layout, at, info.mprotectSize)) {
        candidates.push_back({at, info});
      }
    }
  }
  return candidates;
}

// A heap counts when it starts an arena or chains back to a heap of an arena that one starts.
void KeepChained(const std::vector<Candidate>& candidates, std::vector<uintptr_t>& heaps) {
  std::unordered_set<uintptr_t> arenas, all;
  for (const Candidate& c : candidates) {
    all.insert(c.at);
    if (IsFirstHeap(c.info, c.at)) arenas.insert(c.info.arena);
  }
  for (const Candidate& c : candidates) {
    bool first = IsFirstHeap(c.info, c.at);
    bool chained = c.info.prev != 0 && all.count(c.info.prev) != 0 && arenas.count(c.info.arena) != 0;
    if (first || chained) heaps.push_back(c.at);
  }
}

void Scan(GlibcState& s, const ProcFiles* files) {
  s.scans++;
  s.scanned = true;
  s.heapStart = 0;
  s.breakRoom = -1;
  s.heaps.clear();
  std::vector<Mapping> maps;
  s.mapsRead = ReadMappings(maps);
  if (!s.mapsRead) return;
  Layout layout;
  ReadLayout(maps, s, layout);
  if (s.heapStart == 0) MainArenaFromBreak(s, layout);
  s.breakRoom = BreakRoom(layout);
  KeepChained(FindCandidates(layout, files), s.heaps);
}

// Caller holds s.mutex. Without `mi` (around a trim) nothing is compared with glibc's total:
// the region list found by the last sample stands, with every heap header checked again.
bool MeasureOnce(GlibcState& s, const ProcFiles* files, const Mallinfo* mi, ArenaMeasure& out) {
  // Without the region list (no /proc), "no regions" would read as "nothing resident".
  if (!s.mapsRead) return false;
  std::vector<HeapInfoPrefix>& infos = s.infos;
  infos.resize(s.heaps.size());
  s.destinations.resize(s.heaps.size());
  for (size_t i = 0; i < s.heaps.size(); i++) s.destinations[i] = &infos[i];
  if (!SafeReadMany(files, s.destinations.data(), s.heaps.data(), sizeof(HeapInfoPrefix), s.heaps.size())) return false;
  for (size_t i = 0; i < s.heaps.size(); i++) {
    if (!PlausibleHeap(infos[i], s.heaps[i])) return false;
  }
  uintptr_t brk = reinterpret_cast<uintptr_t>(sbrk(0));
  double mainMapped = s.heapStart != 0 && brk > s.heapStart ? static_cast<double>(brk - s.heapStart) : 0;
  double mainResident = mainMapped > 0 ? ResidentBytes(s.heapStart, brk - s.heapStart, s.scratch) : 0;
  if (mainResident < 0) return false;
  double threadMapped = 0, threadResident = 0, threadTail = 0;
  s.arenaIds.clear();
  // An arena's newest heap (where its top chunk is) is the one no other heap names as prev.
  s.prevs.clear();
  for (size_t i = 0; i < s.heaps.size(); i++) {
    if (infos[i].prev != 0) s.prevs.push_back(infos[i].prev);
  }
  std::sort(s.prevs.begin(), s.prevs.end());
  for (size_t i = 0; i < s.heaps.size(); i++) {
    const bool newest = !std::binary_search(s.prevs.begin(), s.prevs.end(), s.heaps[i]);
    double tail = 0;
    double resident = ResidentBytes(s.heaps[i], infos[i].size, s.scratch, newest ? &tail : nullptr);
    if (resident < 0) return false;
    threadMapped += static_cast<double>(infos[i].size);
    threadResident += resident;
    threadTail += tail;
    s.arenaIds.push_back(infos[i].arena);
  }
  std::sort(s.arenaIds.begin(), s.arenaIds.end());
  const size_t threadArenas = static_cast<size_t>(std::unique(s.arenaIds.begin(), s.arenaIds.end()) - s.arenaIds.begin());
  out.mainMapped = mainMapped;
  out.mainResident = mainResident;
  out.threadMapped = threadMapped;
  out.threadResident = threadResident;
  out.threadTail = threadTail;
  out.breakRoom = s.breakRoom;
  out.heaps = static_cast<uint32_t>(s.heaps.size());
  out.arenas = static_cast<uint32_t>(threadArenas) + (s.heapStart != 0 ? 1 : 0);
  // glibc's total of system memory across arenas; mallinfo() (not 2) wraps at 2^32.
  if (mi == nullptr) return true;
  uint64_t ours = static_cast<uint64_t>(mainMapped + threadMapped);
  uint64_t theirs = mi->arena;
  if (strcmp(mi->source, "mallinfo") == 0) ours &= 0xffffffffu, theirs &= 0xffffffffu;
  out.matchesMallinfo = ours == theirs;
  return true;
}

}  // namespace

void MeasureArenas(GlibcState& s, const ProcFiles* files, const Mallinfo* mi, ArenaMeasure& out) {
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.scanned) Scan(s, files);
  bool ok = MeasureOnce(s, files, mi, out);
  // A heap vanished or appeared (or the region list is stale): find the regions again.
  if (!ok || (mi != nullptr && !out.matchesMallinfo)) {
    Scan(s, files);
    ok = MeasureOnce(s, files, mi, out);
  }
  out.ok = ok;
  out.scans = s.scans;
  s.kept.valid = false;
  if (ok) {
    GlibcState::Kept& k = s.kept;
    k.valid = true;
    k.at = NowNs();
    k.brk = reinterpret_cast<uintptr_t>(sbrk(0));
    k.counted = mi != nullptr;
    k.arena = mi != nullptr ? mi->arena : 0;
    k.mainMapped = out.mainMapped, k.mainResident = out.mainResident;
    k.threadMapped = out.threadMapped, k.threadResident = out.threadResident, k.threadTail = out.threadTail;
    k.heaps = out.heaps, k.arenas = out.arenas;
  }
}

// The last measurement, when it is at most `maxAgeNs` old and glibc's arenas have neither
// grown nor shrunk since (the same break, the same total of arena memory): pages are then
// only released by a trim (which drops the measurement) and only added by first touches
// inside memory glibc already had. Measuring walks the page table of every arena page (a few ns a
// page: a millisecond for a GiB), which a JS-thread sample need not repeat many times a second.
bool ReuseArenas(GlibcState& s, const Mallinfo& mi, double maxAgeNs, ArenaMeasure& out, double& ageNs) {
  if (!(maxAgeNs > 0)) return false;
  std::lock_guard<std::mutex> lock(s.mutex);
  const GlibcState::Kept& k = s.kept;
  if (!k.valid) return false;
  const double age = NowNs() - k.at;
  if (age > maxAgeNs || k.brk != reinterpret_cast<uintptr_t>(sbrk(0))) return false;
  // mallinfo() (not 2) wraps at 2^32.
  const size_t mask = strcmp(mi.source, "mallinfo") == 0 ? 0xffffffffu : ~static_cast<size_t>(0);
  const size_t mapped = static_cast<size_t>(k.mainMapped + k.threadMapped);
  // Measured after a trim, without glibc's total: the regions must add up to it now.
  if (((k.counted ? k.arena : mapped) & mask) != (mi.arena & mask)) return false;
  // Fewer resident bytes than glibc now counts in use: pages were touched since; measure.
  if (k.mainResident + k.threadResident < static_cast<double>(mi.uordblks)) return false;
  out.ok = true;
  out.mainMapped = k.mainMapped, out.mainResident = k.mainResident;
  out.threadMapped = k.threadMapped, out.threadResident = k.threadResident, out.threadTail = k.threadTail;
  out.breakRoom = s.breakRoom;
  out.heaps = k.heaps, out.arenas = k.arenas;
  out.matchesMallinfo = (mapped & mask) == (mi.arena & mask);
  out.scans = s.scans;
  ageNs = age;
  return true;
}


bool GlibcArenaHolds(const void* block) {
#ifdef __linux__
  if (Api().version == nullptr || block == nullptr) return false;
  const uintptr_t p = reinterpret_cast<uintptr_t>(block);
  // A thread arena's heap: a valid header at the HEAP_MAX_SIZE-aligned start, p inside it.
  const uintptr_t at = p & ~(kHeapMax - 1);
  HeapInfoPrefix info;
  if (SafeRead(nullptr, &info, at, sizeof info) && PlausibleHeap(info, at) && p < at + info.size) return true;
  // The main arena: inside [heap], below the break.
  const uintptr_t brk = reinterpret_cast<uintptr_t>(sbrk(0));
  if (p >= brk) return false;
  std::vector<Mapping> maps;
  if (!ReadMappings(maps)) return false;
  for (const Mapping& m : maps) {
    if (m.heap && p >= m.start && p < m.end) return true;
  }
#endif
  return false;
}

}  // namespace allocstats
