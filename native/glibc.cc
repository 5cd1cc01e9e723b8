#include "glibc.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "addon.h"
#include "backend.h"
#include "common.h"
#include "detect.h"
#include "procfs.h"
#include "wire.h"

namespace allocstats {

namespace {

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

// The symbol versions of glibc's malloc functions: the architecture's first glibc version, or
// the one that added the function if later. Elsewhere they are looked up by name alone.
#if defined(__GLIBC__) && defined(__x86_64__)
constexpr const char* kBaseVersion = "GLIBC_2.2.5";
constexpr const char* kMallocInfoVersion = "GLIBC_2.10";
#elif defined(__GLIBC__) && defined(__aarch64__)
constexpr const char* kBaseVersion = "GLIBC_2.17";
constexpr const char* kMallocInfoVersion = "GLIBC_2.17";
#else
constexpr const char* kBaseVersion = nullptr;
constexpr const char* kMallocInfoVersion = nullptr;
#endif
#if defined(__GLIBC__)
constexpr const char* kMallinfo2Version = "GLIBC_2.33";
#else
constexpr const char* kMallinfo2Version = nullptr;
#endif

// A malloc function by name and version. glibc's malloc-debug library
// (LD_PRELOAD=libc_malloc_debug.so.0) serves malloc with its own copy of the allocator while
// checking is on (MALLOC_CHECK_, glibc.malloc.check), and exports mallinfo2, malloc_trim and the
// rest only under non-default versions, which dlsym() never returns: it would find libc's, which
// count an empty heap and trim nothing. dlvsym() finds the first definition of that version in
// the process, the debug library's when it is loaded (it forwards to libc's while checking is
// off), libc's otherwise.
template <typename Fn>
Fn MallocFunction(const char* name, const char* version) {
#if defined(__GLIBC__)
  if (version != nullptr) {
    if (void* f = dlvsym(RTLD_DEFAULT, name, version)) return reinterpret_cast<Fn>(f);
  }
#endif
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

// Resolved once per process; immutable afterwards.
const GlibcApi& Api() {
  static const GlibcApi api = [] {
    GlibcApi a;
    a.version = reinterpret_cast<const char* (*)()>(dlsym(RTLD_DEFAULT, "gnu_get_libc_version"));
    if (a.version == nullptr) return a;  // not glibc: none of the rest is glibc's either
    a.mallinfo2 = MallocFunction<Mallinfo2Raw (*)()>("mallinfo2", kMallinfo2Version);
    a.mallinfo = MallocFunction<MallinfoRaw (*)()>("mallinfo", kBaseVersion);
    a.mallocTrim = MallocFunction<int (*)(size_t)>("malloc_trim", kBaseVersion);
    a.mallocInfo = MallocFunction<int (*)(int, FILE*)>("malloc_info", kMallocInfoVersion);
    a.mallopt = MallocFunction<int (*)(int, int)>("mallopt", kBaseVersion);
    return a;
  }();
  return api;
}

// Thread-arena heaps are HEAP_MAX_SIZE-aligned mappings (2 * DEFAULT_MMAP_THRESHOLD_MAX).
constexpr uintptr_t kHeapMax = sizeof(long) == 8 ? (64u << 20) : (1u << 20);

// The stable prefix of glibc's heap_info, the header at the start of every thread-arena heap.
struct HeapInfoPrefix {
  uintptr_t arena;     // mstate ar_ptr
  uintptr_t prev;      // previous heap of the same arena, or 0
  size_t size;         // bytes in use by the heap (read/write part)
  size_t mprotectSize; // bytes made read/write so far
};

bool PlausibleHeap(const HeapInfoPrefix& h, uintptr_t at) {
  const size_t page = PageSize();
  return h.size >= page && h.size <= kHeapMax && h.size % page == 0 && h.mprotectSize >= h.size &&
         h.mprotectSize <= kHeapMax && h.mprotectSize % page == 0 && h.arena != 0 && h.prev != at;
}

// The first heap of an arena holds the arena's malloc_state right after its header.
bool IsFirstHeap(const HeapInfoPrefix& h, uintptr_t at) {
  return h.prev == 0 && h.arena > at && h.arena <= at + 128;
}

}  // namespace

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

namespace {

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

void Scan(GlibcState& s, const ProcFiles* files) {
  s.scans++;
  s.scanned = true;
  s.heapStart = 0;
  s.breakRoom = -1;
  s.heaps.clear();
  std::string maps;
  s.mapsRead = ReadSelfMaps(maps);
  if (!s.mapsRead) return;

  struct Candidate {
    uintptr_t at;
    HeapInfoPrefix info;
  };
  // Anonymous mappings, in address order, merged where they touch: a heap's reservation is its
  // read/write part followed by the PROT_NONE rest, both anonymous.
  struct Span {
    uintptr_t start, end;
  };
  std::vector<Span> anonymousSpans;
  std::vector<Span> readWrite;
  std::vector<uintptr_t> starts;  // of every mapping, in address order
  const char* line = maps.c_str();
  uintptr_t heapEnd = 0;  // end of [heap]
  while (*line != '\0') {
    const char* next = strchr(line, '\n');
    const char* lineEnd = next != nullptr ? next : line + strlen(line);
    unsigned long start = 0, end = 0, inode = 0;
    char perms[5] = {0};
    int pathOffset = 0;
    if (sscanf(line, "%lx-%lx %4s %*x %*x:%*x %lu %n", &start, &end, perms, &inode, &pathOffset) >= 4) {
      const char* path = line + pathOffset;
      starts.push_back(start);
      bool anonymous = inode == 0 && (path >= lineEnd || *path == '\n' || *path == '\0');
      if (strncmp(path, "[heap]", 6) == 0) {
        if (s.heapStart == 0) s.heapStart = start, heapEnd = end;
      } else if (anonymous) {
        if (!anonymousSpans.empty() && anonymousSpans.back().end == start) {
          anonymousSpans.back().end = end;
        } else {
          anonymousSpans.push_back({start, end});
        }
        if (perms[0] == 'r' && perms[1] == 'w') readWrite.push_back({start, end});
      }
    }
    if (next == nullptr) break;
    line = next + 1;
  }

  // No [heap] line (qemu-user shows the program break's area unlabelled, merged with the
  // program's bss): the main arena is the anonymous read/write mapping that holds the break,
  // from the end of the program's own segments on.
  if (s.heapStart == 0) {
    const uintptr_t brk = reinterpret_cast<uintptr_t>(sbrk(0));
    const uintptr_t programEnd = ProgramEnd();
    for (const Span& rw : readWrite) {
      if (programEnd == 0 || brk <= programEnd) break;
      if (rw.start < brk && brk <= rw.end && rw.end > programEnd) {
        s.heapStart = std::max(rw.start, programEnd);
        heapEnd = rw.end;
        break;
      }
    }
  }
  if (heapEnd != 0) {
    auto above = std::lower_bound(starts.begin(), starts.end(), heapEnd);
    s.breakRoom = above != starts.end() ? static_cast<double>(*above - heapEnd) : -1;
  }

  // A heap's header is read after the maps were: a heap that grew in between reaches past its
  // read/write part as the maps showed it, but never past its reservation.
  auto reserved = [&anonymousSpans](uintptr_t at, size_t length) {
    for (const Span& span : anonymousSpans) {
      if (span.start <= at && at < span.end) return at + length <= span.end;
    }
    return false;
  };
  std::vector<Candidate> candidates;
  for (const Span& rw : readWrite) {
    // A heap's read/write part may have merged with a neighbouring anonymous mapping,
    // so try every aligned address inside it.
    for (uintptr_t at = (rw.start + kHeapMax - 1) & ~(kHeapMax - 1); at < rw.end; at += kHeapMax) {
      HeapInfoPrefix info;
      if (SafeRead(files, &info, at, sizeof info) && PlausibleHeap(info, at) && reserved(at, info.mprotectSize)) {
        candidates.push_back({at, info});
      }
    }
  }

  std::unordered_set<uintptr_t> arenas, all;
  for (const Candidate& c : candidates) {
    all.insert(c.at);
    if (IsFirstHeap(c.info, c.at)) arenas.insert(c.info.arena);
  }
  for (const Candidate& c : candidates) {
    bool first = IsFirstHeap(c.info, c.at);
    bool chained = c.info.prev != 0 && all.count(c.info.prev) != 0 && arenas.count(c.info.arena) != 0;
    if (first || chained) s.heaps.push_back(c.at);
  }
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

std::string MallocInfoXml() {
  const GlibcApi& api = Api();
  if (api.mallocInfo == nullptr) return "";
  char* buffer = nullptr;
  size_t length = 0;
  FILE* stream = open_memstream(&buffer, &length);
  if (stream == nullptr) return "";
  api.mallocInfo(0, stream);
  fclose(stream);
  std::string xml(buffer != nullptr ? buffer : "", length);
  free(buffer);
  return xml;
}

// malloc_info()'s XML as rows of numbers, so that no large string crosses into JS.
// Each row is kRowWidth doubles: kind, arena (heap nr, -1 for the process totals), a, b, c, d;
// the kinds and the width are exported by name (glibcMallocInfoRow) for src/mallocinfo.ts.
// A row's kind is its index in this list.
#define MALLOC_INFO_ROW_KINDS(X) X(none) X(bucket) X(unsorted) X(totalFast) X(totalRest) X(totalMmap) X(systemCurrent) X(systemMax)
ALLOCSTATS_DECLARE_FIELDS(RowKind, MALLOC_INFO_ROW_KINDS);
#define MALLOC_INFO_ROW_FIELDS(X) X(kind) X(arena) X(a) X(b) X(c) X(d)
ALLOCSTATS_DECLARE_FIELDS(Row, MALLOC_INFO_ROW_FIELDS);
constexpr size_t kRowWidth = Row::kCount;
enum : int {
  kBucket = RowKind::bucket, kUnsorted = RowKind::unsorted, kTotalFast = RowKind::totalFast, kTotalRest = RowKind::totalRest,
  kTotalMmap = RowKind::totalMmap, kSystemCurrent = RowKind::systemCurrent, kSystemMax = RowKind::systemMax
};

// `key` is ` name="`; malloc_info prints whole numbers only.
double Attribute(const char* tag, const char* end, const char* key) {
  const char* at = strstr(tag, key);
  if (at == nullptr || at >= end) return 0;
  return static_cast<double>(strtoull(at + strlen(key), nullptr, 10));
}

bool Starts(const char* at, const char* prefix) { return strncmp(at, prefix, strlen(prefix)) == 0; }

void ParseMallocInfo(const std::string& xml, std::vector<double>& rows) {
  rows.clear();
  double arena = -1;
  const char* at = xml.c_str();
  while ((at = strchr(at, '<')) != nullptr) {
    const char* end = strchr(at, '>');
    if (end == nullptr) break;
    double kind = 0, a = 0, b = 0, c = 0, d = 0;
    if (Starts(at, "<heap ")) {
      arena = Attribute(at, end, " nr=\"");
    } else if (Starts(at, "</heap>")) {
      arena = -1;
    } else if (Starts(at, "<size ") || Starts(at, "<unsorted ")) {
      kind = at[1] == 's' ? kBucket : kUnsorted;
      a = Attribute(at, end, " from=\""), b = Attribute(at, end, " to=\"");
      c = Attribute(at, end, " total=\""), d = Attribute(at, end, " count=\"");
    } else if (Starts(at, "<total type=\"")) {
      const char* type = at + 13;
      kind = Starts(type, "fast") ? kTotalFast : Starts(type, "rest") ? kTotalRest : Starts(type, "mmap") ? kTotalMmap : 0;
      a = Attribute(at, end, " count=\""), b = Attribute(at, end, " size=\"");
    } else if (Starts(at, "<system type=\"")) {
      const char* type = at + 14;
      kind = Starts(type, "current") ? kSystemCurrent : Starts(type, "max") ? kSystemMax : 0;
      a = Attribute(at, end, " size=\"");
    }
    if (kind != 0) {
      const double row[kRowWidth] = {kind, arena, a, b, c, d};
      rows.insert(rows.end(), row, row + kRowWidth);
    }
    at = end + 1;
  }
}

// malloc_info()'s process totals are mallinfo2()'s counters. When both are wanted, taking them
// from one walk halves the time spent holding each arena's lock (threads that allocate in that
// arena wait meanwhile).
bool MallinfoFromRows(const std::vector<double>& rows, Mallinfo& out) {
  bool system = false;
  double restSize = 0, mainRest = 0, mainFast = 0, mainBinned = 0;
  for (size_t i = 0; i + kRowWidth <= rows.size(); i += kRowWidth) {
    const int kind = static_cast<int>(rows[i]);
    const double arena = rows[i + 1], a = rows[i + 2], b = rows[i + 3], c = rows[i + 4];
    if (arena < 0) {
      if (kind == kTotalFast) out.smblks = size_t(a), out.fsmblks = size_t(b);
      if (kind == kTotalRest) out.ordblks = size_t(a), restSize = b;
      if (kind == kTotalMmap) out.hblks = size_t(a), out.hblkhd = size_t(b);
      if (kind == kSystemCurrent) out.arena = size_t(a), system = true;
    } else if (arena == 0) {
      if (kind == kBucket || kind == kUnsorted) mainBinned += c;
      if (kind == kTotalFast) mainFast = b;
      if (kind == kTotalRest) mainRest = b;
    }
  }
  if (!system) return false;
  out.source = "malloc_info";
  out.fordblks = out.fsmblks + size_t(restSize);
  out.uordblks = out.arena > out.fordblks ? out.arena - out.fordblks : 0;
  out.usmblks = 0;
  // The histogram lists fast-bin chunks too; `rest` is the other bins plus the top chunk.
  double top = mainRest - (mainBinned - mainFast);
  out.keepcost = top > 0 ? size_t(top) : 0;
  return true;
}

Napi::Value RowsToJs(Napi::Env env, const std::vector<double>& rows) {
  Napi::Float64Array array = Napi::Float64Array::New(env, rows.size());
  if (!rows.empty()) memcpy(array.Data(), rows.data(), rows.size() * sizeof(double));
  return array;
}

// <malloc.h> order; shared by a sample and by glibc.mallinfo2().
#define MALLINFO_FIELDS(X) X(arena) X(ordblks) X(smblks) X(hblks) X(hblkhd) X(usmblks) X(fsmblks) X(uordblks) X(fordblks) X(keepcost)
// source: where the counters came from, an index into MALLINFO_SOURCES (0: none).
#define MALLINFO_SOURCES(X) X(none) X(mallinfo2) X(mallinfo) X(malloc_info)
ALLOCSTATS_DECLARE_FIELDS(Source, MALLINFO_SOURCES);
#define MALLINFO_RECORD(X) X(source) MALLINFO_FIELDS(X)
ALLOCSTATS_DECLARE_FIELDS(MallinfoRecord, MALLINFO_RECORD);

// mallocInfo: 0 not asked, 1 read (its rows are the record's tail), 2 unavailable.
#define ARENA_FIELDS(X) X(arenasOk) X(mainMapped) X(mainResident) X(threadMapped) X(threadResident) X(threadTail) X(breakRoom) X(heaps) X(arenas)
// residencyAgeNs: how old the arena residency is (0: measured by this sample).
#define SAMPLE_FIELDS(X) MALLINFO_RECORD(X) ARENA_FIELDS(X) X(matches) X(scans) X(mallocInfo) X(residencyAgeNs)
ALLOCSTATS_DECLARE_FIELDS(SampleField, SAMPLE_FIELDS);
#define GAUGE_FIELDS(X) X(arenasOk) X(mainResident) X(threadResident)
ALLOCSTATS_DECLARE_FIELDS(GaugeField, GAUGE_FIELDS);
// residencyMaxAgeNs: a sample may reuse arena residency this old (0: always measure).
#define SAMPLE_ARGS(X) X(releasable) X(residencyMaxAgeNs)
ALLOCSTATS_DECLARE_FIELDS(SampleArg, SAMPLE_ARGS);
// residencyMaxAgeNs: a trim may start from arena residency this old instead of gauging after.
#define TRIM_ARGS(X) X(pad) X(residencyMaxAgeNs)
ALLOCSTATS_DECLARE_FIELDS(TrimArg, TRIM_ARGS);
// The residency kept from a recent measurement when the trim started (unknown if none was
// recent enough: then the residency is gauged after the trim instead).
#define TRIM_FIELDS(X) X(keptMainResident) X(keptThreadResident) X(keptAgeNs)
ALLOCSTATS_DECLARE_FIELDS(TrimField, TRIM_FIELDS);

double SourceIndex(const char* source) {
  if (source == nullptr) return Source::none;
  if (strcmp(source, "mallinfo2") == 0) return Source::mallinfo2;
  if (strcmp(source, "malloc_info") == 0) return Source::malloc_info;
  return Source::mallinfo;
}

// Writes MALLINFO_RECORD's fields starting at out[0].
void PutMallinfo(double* out, const Mallinfo& mi) {
  out[MallinfoRecord::source] = SourceIndex(mi.source);
#define PUT(name) out[MallinfoRecord::name] = static_cast<double>(mi.name);
  MALLINFO_FIELDS(PUT)
#undef PUT
}

bool Flag(double v) { return v == v && v != 0; }

// A whole number of bytes from a double that TypeScript already checked; anything else is 0.
size_t Bytes(double v) { return v >= 0 && v <= 9007199254740991.0 ? static_cast<size_t>(v) : 0; }

class Glibc final : public Backend {
 public:
  void Probe(Detection& d) const override {
    if (d.backend != nullptr) return;
    if (const char* glibc = GlibcVersion()) {
      const char* how = "";
      if (GlibcServes(&how)) {
        d.backend = this;
        d.name = "glibc";
        d.version = glibc;
        d.method = how;
        d.library = LibraryOf(dlsym(RTLD_DEFAULT, "gnu_get_libc_version"));
      } else {
        d.method = "glibc is loaded but its counters did not move on malloc, and no known allocator claimed it";
      }
  }

  }

  const char* Name() const override { return "glibc"; }
  bool Serving() const override { return DetectAllocator().backend == this; }
  bool CanTrim() const override { return Serving() && Api().mallocTrim != nullptr; }
  FieldNames SampleFields() const override { return NamesOf<SampleField>(); }
  FieldNames SampleArgs() const override { return NamesOf<SampleArg>(); }
  FieldNames GaugeFields() const override { return NamesOf<GaugeField>(); }
  FieldNames TrimFields() const override { return NamesOf<TrimField>(); }
  FieldNames TrimArgs() const override { return NamesOf<TrimArg>(); }

  std::shared_ptr<BackendState> NewState(Napi::Env) const override { return std::make_shared<GlibcState>(); }

  void Sample(const Call& call, Record& out) const override {
    GlibcState& state = static_cast<GlibcState&>(*call.state);
    const bool withMallocInfo = Flag(call.Arg(SampleArg::releasable));
    Mallinfo mi;
    bool counters = false;
    out[SampleField::mallocInfo] = withMallocInfo ? (Api().mallocInfo != nullptr ? 1 : 2) : 0;
    if (withMallocInfo && Api().mallocInfo != nullptr) {
      // One walk gives both the counters and the free-chunk histogram.
      ParseMallocInfo(MallocInfoXml(), out.tail);
      counters = MallinfoFromRows(out.tail, mi);
    }
    if (!counters) counters = GlibcMallinfo(mi);
    PutMallinfo(&out[0], mi);
    if (!counters) return;
    ArenaMeasure ar;
    double ageNs = 0;
    if (!ReuseArenas(state, mi, call.Arg(SampleArg::residencyMaxAgeNs), ar, ageNs)) {
      MeasureArenas(state, call.files.get(), &mi, ar);
    }
    out[SampleField::residencyAgeNs] = ageNs;
    out[SampleField::arenasOk] = ar.ok ? 1 : 0;
    if (ar.ok) {
      out[SampleField::mainMapped] = ar.mainMapped, out[SampleField::mainResident] = ar.mainResident;
      out[SampleField::threadMapped] = ar.threadMapped, out[SampleField::threadResident] = ar.threadResident;
      out[SampleField::threadTail] = ar.threadTail;
      out[SampleField::breakRoom] = ar.breakRoom;
      out[SampleField::heaps] = ar.heaps, out[SampleField::arenas] = ar.arenas;
    }
    out[SampleField::matches] = ar.matchesMallinfo ? 1 : 0;
    out[SampleField::scans] = static_cast<double>(ar.scans);
  }

  // Residency only: mincore() and the heap headers take no arena lock, while a count of the
  // allocated bytes would walk every free chunk under each arena's lock and stall every
  // thread that allocates meanwhile, for many times what malloc_trim() itself takes.
  void Gauge(const Call& call, Record& out) const override {
    GlibcState& state = static_cast<GlibcState&>(*call.state);
    ArenaMeasure ar;
    MeasureArenas(state, call.files.get(), nullptr, ar);
    out[GaugeField::arenasOk] = ar.ok ? 1 : 0;
    if (ar.ok) out[GaugeField::mainResident] = ar.mainResident, out[GaugeField::threadResident] = ar.threadResident;
  }

  // Residency costs a page-table walk of every arena region (a third of a millisecond for a
  // few hundred MB), many times malloc_trim() itself: it is gauged once, after the trim, and
  // the residency before is that plus what RSS says the trim released.
  bool GaugeBefore() const override { return false; }
  // ... unless a measurement recent enough was kept (Trim() reports it): then none is.

  int Trim(const Call& call, Record& out) const override {
    GlibcState& state = static_cast<GlibcState&>(*call.state);
    {
      std::lock_guard<std::mutex> lock(state.mutex);
      const GlibcState::Kept& k = state.kept;
      const double age = NowNs() - k.at;
      // A recent measurement of arenas that kept their size stands for the residency before:
      // a trim only gives pages back, and RSS says how many, so no page-table walk is needed.
      if (k.valid && age <= call.Arg(TrimArg::residencyMaxAgeNs) && k.brk == reinterpret_cast<uintptr_t>(sbrk(0))) {
        out[TrimField::keptMainResident] = k.mainResident;
        out[TrimField::keptThreadResident] = k.threadResident;
        out[TrimField::keptAgeNs] = age;
      }
      // It stops describing the arenas as pages go back.
      state.kept.valid = false;
    }
    return Api().mallocTrim(Bytes(call.Arg(TrimArg::pad)));
  }

  bool GaugeAfter(const Record& own) const override { return std::isnan(own.values[TrimField::keptAgeNs]); }

  void Extras(Napi::Env env, Napi::Object exports) const override;
};

Napi::Value MallinfoToJs(Napi::Env env, const Mallinfo& mi) {
  if (mi.source == nullptr) return env.Null();
  Napi::Float64Array array = Napi::Float64Array::New(env, MallinfoRecord::kCount);
  PutMallinfo(array.Data(), mi);
  return array;
}

Napi::Value MalloptJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (Api().mallopt == nullptr) throw CodedError(env, "ERR_ALLOCATOR_UNSUPPORTED", "mallopt() is not available in this process");
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw CodedError(env, "ERR_INVALID_ARG_TYPE", "mallopt(param, value) takes two integers");
  }
  int param = info[0].As<Napi::Number>().Int32Value();
  int value = info[1].As<Napi::Number>().Int32Value();
  return Napi::Boolean::New(env, Api().mallopt(param, value) == 1);
}

Napi::Value GlibcInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const GlibcApi& api = Api();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", api.version != nullptr ? Napi::String::New(env, api.version()) : env.Null());
  o.Set("mallinfo2", api.mallinfo2 != nullptr);
  o.Set("mallinfo", api.mallinfo != nullptr);
  o.Set("mallocTrim", api.mallocTrim != nullptr);
  o.Set("mallocInfo", api.mallocInfo != nullptr);
  o.Set("mallopt", api.mallopt != nullptr);
  o.Set("pageSize", static_cast<double>(PageSize()));
  return o;
}

Napi::Array Names(Napi::Env env, FieldNames names) {
  Napi::Array array = Napi::Array::New(env, names.count);
  for (size_t i = 0; i < names.count; i++) array.Set(static_cast<uint32_t>(i), names.names[i]);
  return array;
}

void Glibc::Extras(Napi::Env env, Napi::Object exports) const {
  exports.Set("glibcInfo", Napi::Function::New(env, GlibcInfoJs, "glibcInfo"));
  exports.Set("glibcMallopt", Napi::Function::New(env, MalloptJs, "glibcMallopt"));
  Napi::Object wire = Napi::Object::New(env);
  wire.Set("mallinfo", Names(env, NamesOf<MallinfoRecord>()));
  wire.Set("mallinfoSources", Names(env, NamesOf<Source>()));
  wire.Set("mallocInfoRow", Names(env, NamesOf<Row>()));
  wire.Set("mallocInfoRowKinds", Names(env, NamesOf<RowKind>()));
  exports.Set("glibcWire", wire);
  ExportPair<Mallinfo>(
      env, exports, "glibcMallinfo",
      [] {
        Mallinfo mi;
        GlibcMallinfo(mi);
        return mi;
      },
      [](Napi::Env e, Mallinfo& mi) { return MallinfoToJs(e, mi); });
  // The bare call, unmeasured: the baseline `npm run bench` holds trim() against.
  ExportPair<double>(
      env, exports, "glibcMallocTrim", [] { return Api().mallocTrim != nullptr ? double(Api().mallocTrim(0)) : kUnknown; },
      [](Napi::Env e, double& r) { return Napi::Number::New(e, r); });
  const bool available = Api().mallocInfo != nullptr;
  ExportPair<std::vector<double>>(
      env, exports, "glibcMallocInfo",
      [] {
        std::vector<double> rows;
        ParseMallocInfo(MallocInfoXml(), rows);
        return rows;
      },
      [available](Napi::Env e, std::vector<double>& rows) -> Napi::Value {
        if (!available) return e.Null();
        return RowsToJs(e, rows);
      });
}

}  // namespace

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
  std::string maps;
  if (!ReadSelfMaps(maps)) return false;
  for (size_t line = 0; line < maps.size();) {
    size_t next = maps.find('\n', line);
    if (next == std::string::npos) next = maps.size();
    if (maps.find("[heap]", line) < next) {
      unsigned long start = 0, end = 0;
      if (sscanf(maps.c_str() + line, "%lx-%lx", &start, &end) == 2 && p >= start && p < end) return true;
    }
    line = next + 1;
  }
#endif
  return false;
}

bool GlibcMallinfo(Mallinfo& out) {
  const GlibcApi& api = Api();
  if (api.mallinfo2 != nullptr) {
    Mallinfo2Raw m = api.mallinfo2();
    out.source = "mallinfo2";
    out.arena = m.arena, out.ordblks = m.ordblks, out.smblks = m.smblks, out.hblks = m.hblks;
    out.hblkhd = m.hblkhd, out.usmblks = m.usmblks, out.fsmblks = m.fsmblks;
    out.uordblks = m.uordblks, out.fordblks = m.fordblks, out.keepcost = m.keepcost;
    return true;
  }
  if (api.mallinfo != nullptr) {
    MallinfoRaw m = api.mallinfo();
    // int fields hold the low 32 bits of size_t counters: read them back as unsigned.
    auto u = [](int v) { return static_cast<size_t>(static_cast<unsigned int>(v)); };
    out.source = "mallinfo";
    out.arena = u(m.arena), out.ordblks = u(m.ordblks), out.smblks = u(m.smblks), out.hblks = u(m.hblks);
    out.hblkhd = u(m.hblkhd), out.usmblks = u(m.usmblks), out.fsmblks = u(m.fsmblks);
    out.uordblks = u(m.uordblks), out.fordblks = u(m.fordblks), out.keepcost = u(m.keepcost);
    return true;
  }
  return false;
}

bool GlibcServes(const char** how) {
  // A small block from glibc lands in one of its arenas: checked without taking any arena lock.
  // Only when that fails do glibc's counters decide, each read a walk of every free chunk
  // under each arena's lock (tens of ms on a fragmented heap, while allocating threads wait).
  void* probe = ProbeAllocate(64);
  bool held = GlibcArenaHolds(probe);
  ProbeFree(probe);
  if (held) {
    if (how != nullptr) *how = "a malloc() block lies in a glibc arena";
    return true;
  }
  if (how != nullptr) *how = "mallinfo counters moved on malloc";
  for (int attempt = 0; attempt < 3; attempt++) {
    Mallinfo before, after;
    if (!GlibcMallinfo(before)) return false;
    void* p = ProbeAllocate(kProbeBytes);
    bool ok = GlibcMallinfo(after);
    ProbeFree(p);
    if (!ok) return false;
    // Whether the block came from an arena or from mmap, one of the two counters carries it.
    // Sums stay in size_t: mallinfo() fields may have wrapped.
    size_t used0 = before.uordblks + before.hblkhd;
    size_t used1 = after.uordblks + after.hblkhd;
    if (used1 - used0 >= kProbeBytes && used1 - used0 < (static_cast<size_t>(1) << 40)) return true;
  }
  return false;
}

const char* GlibcVersion() {
  const GlibcApi& api = Api();
  return api.version != nullptr ? api.version() : nullptr;
}

const Backend& GlibcBackend() {
  static const Glibc backend;
  return backend;
}

}  // namespace allocstats
