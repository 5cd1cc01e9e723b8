#include "glibc.h"

#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

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
#include "common.h"
#include "detect.h"
#include "procfs.h"

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

// Resolved once per process; immutable afterwards.
const GlibcApi& Api() {
  static const GlibcApi api = [] {
    GlibcApi a;
    a.version = reinterpret_cast<const char* (*)()>(dlsym(RTLD_DEFAULT, "gnu_get_libc_version"));
    if (a.version == nullptr) return a;  // not glibc: none of the rest is glibc's either
    a.mallinfo2 = reinterpret_cast<Mallinfo2Raw (*)()>(dlsym(RTLD_DEFAULT, "mallinfo2"));
    a.mallinfo = reinterpret_cast<MallinfoRaw (*)()>(dlsym(RTLD_DEFAULT, "mallinfo"));
    a.mallocTrim = reinterpret_cast<int (*)(size_t)>(dlsym(RTLD_DEFAULT, "malloc_trim"));
    a.mallocInfo = reinterpret_cast<int (*)(int, FILE*)>(dlsym(RTLD_DEFAULT, "malloc_info"));
    a.mallopt = reinterpret_cast<int (*)(int, int)>(dlsym(RTLD_DEFAULT, "mallopt"));
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
struct GlibcState {
  std::mutex mutex;
  bool scanned = false;
  uintptr_t heapStart = 0;  // start of [heap] (main arena), 0 if there is none
  std::vector<uintptr_t> heaps;
  std::vector<unsigned char> scratch;
  uint64_t scans = 0;
};

namespace {

struct ArenaMeasure {
  bool ok = false;
  double mainMapped = -1, mainResident = -1;
  double threadMapped = -1, threadResident = -1;
  uint32_t heaps = 0, arenas = 0;
  bool matchesMallinfo = false;
  uint64_t scans = 0;
};

struct Sample {
  bool glibc = false;
  Mallinfo mallinfo;
  ArenaMeasure arenas;
  ProcessMemory process;
  bool withMallocInfo = false;
  bool mallocInfoOk = false;
  std::vector<double> mallocInfoRows;  // kRowWidth doubles per row, see ParseMallocInfo
  double costNs = 0;
};

struct TrimOutcome {
  Sample before, after;
  int result = 0;
  double durationNs = 0;
  double rssBefore = -1, rssAfter = -1;
};

void Scan(GlibcState& s, const ProcFiles* files) {
  s.scans++;
  s.scanned = true;
  s.heapStart = 0;
  s.heaps.clear();
  std::string maps;
  if (!ReadSelfMaps(maps)) return;

  struct Candidate {
    uintptr_t at;
    HeapInfoPrefix info;
  };
  std::vector<Candidate> candidates;
  const char* line = maps.c_str();
  while (*line != '\0') {
    const char* next = strchr(line, '\n');
    const char* lineEnd = next != nullptr ? next : line + strlen(line);
    unsigned long start = 0, end = 0, inode = 0;
    char perms[5] = {0};
    int pathOffset = 0;
    if (sscanf(line, "%lx-%lx %4s %*x %*x:%*x %lu %n", &start, &end, perms, &inode, &pathOffset) >= 4) {
      const char* path = line + pathOffset;
      bool anonymous = inode == 0 && (path >= lineEnd || *path == '\n' || *path == '\0');
      if (strncmp(path, "[heap]", 6) == 0) {
        if (s.heapStart == 0) s.heapStart = start;
      } else if (anonymous && perms[0] == 'r' && perms[1] == 'w') {
        // A heap's read/write part may have merged with a neighbouring anonymous mapping,
        // so try every aligned address inside it.
        for (uintptr_t at = (start + kHeapMax - 1) & ~(kHeapMax - 1); at < end; at += kHeapMax) {
          HeapInfoPrefix info;
          if (SafeRead(files, &info, at, sizeof info) && PlausibleHeap(info, at) && at + info.mprotectSize <= end) {
            candidates.push_back({at, info});
          }
        }
      }
    }
    if (next == nullptr) break;
    line = next + 1;
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

// Caller holds s.mutex.
bool MeasureOnce(GlibcState& s, const ProcFiles* files, const Mallinfo& mi, ArenaMeasure& out) {
  std::vector<HeapInfoPrefix> infos(s.heaps.size());
  std::vector<void*> destinations(s.heaps.size());
  for (size_t i = 0; i < s.heaps.size(); i++) destinations[i] = &infos[i];
  if (!SafeReadMany(files, destinations.data(), s.heaps.data(), sizeof(HeapInfoPrefix), s.heaps.size())) return false;
  for (size_t i = 0; i < s.heaps.size(); i++) {
    if (!PlausibleHeap(infos[i], s.heaps[i])) return false;
  }
  uintptr_t brk = reinterpret_cast<uintptr_t>(sbrk(0));
  double mainMapped = s.heapStart != 0 && brk > s.heapStart ? static_cast<double>(brk - s.heapStart) : 0;
  double mainResident = mainMapped > 0 ? ResidentBytes(s.heapStart, brk - s.heapStart, s.scratch) : 0;
  if (mainResident < 0) return false;
  double threadMapped = 0, threadResident = 0;
  std::unordered_set<uintptr_t> arenas;
  for (size_t i = 0; i < s.heaps.size(); i++) {
    double resident = ResidentBytes(s.heaps[i], infos[i].size, s.scratch);
    if (resident < 0) return false;
    threadMapped += static_cast<double>(infos[i].size);
    threadResident += resident;
    arenas.insert(infos[i].arena);
  }
  out.mainMapped = mainMapped;
  out.mainResident = mainResident;
  out.threadMapped = threadMapped;
  out.threadResident = threadResident;
  out.heaps = static_cast<uint32_t>(s.heaps.size());
  out.arenas = static_cast<uint32_t>(arenas.size()) + (s.heapStart != 0 ? 1 : 0);
  // glibc's total of system memory across arenas; mallinfo() (not 2) wraps at 2^32.
  uint64_t ours = static_cast<uint64_t>(mainMapped + threadMapped);
  uint64_t theirs = mi.arena;
  if (strcmp(mi.source, "mallinfo") == 0) ours &= 0xffffffffu, theirs &= 0xffffffffu;
  out.matchesMallinfo = ours == theirs;
  return true;
}

void MeasureArenas(GlibcState& s, const ProcFiles* files, const Mallinfo& mi, ArenaMeasure& out) {
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.scanned) Scan(s, files);
  bool ok = MeasureOnce(s, files, mi, out);
  // A heap vanished or appeared (or the region list is stale): find the regions again.
  if (!ok || !out.matchesMallinfo) {
    Scan(s, files);
    ok = MeasureOnce(s, files, mi, out);
  }
  out.ok = ok;
  out.scans = s.scans;
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
// Each row is kRowWidth doubles: kind, arena (heap nr, -1 for the process totals), a, b, c, d.
// Keep in sync with MALLOC_INFO_ROW in src/backends/glibc.ts.
enum RowKind { kBucket = 1, kUnsorted = 2, kTotalFast = 3, kTotalRest = 4, kTotalMmap = 5, kSystemCurrent = 6, kSystemMax = 7 };
constexpr size_t kRowWidth = 6;

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

// Runs on the JS thread (Sync) or on the threadpool; touches no N-API.
struct Context {
  std::shared_ptr<GlibcState> state;
  std::shared_ptr<ProcFiles> files;
};

Sample TakeSample(const Context& ctx, bool withMallocInfo) {
  Sample sample;
  double start = NowNs();
  ReadProcessMemory(ctx.files.get(), sample.process);
  sample.glibc = DetectAllocator().kind == AllocatorKind::Glibc;
  // Under another allocator glibc's counters read zero: report nothing rather than zeros.
  if (sample.glibc) {
    sample.withMallocInfo = withMallocInfo;
    sample.mallocInfoOk = withMallocInfo && Api().mallocInfo != nullptr;
    bool counters = false;
    if (sample.mallocInfoOk) {
      ParseMallocInfo(MallocInfoXml(), sample.mallocInfoRows);
      counters = MallinfoFromRows(sample.mallocInfoRows, sample.mallinfo);
    }
    if (!counters) counters = GlibcMallinfo(sample.mallinfo);
    if (counters) MeasureArenas(*ctx.state, ctx.files.get(), sample.mallinfo, sample.arenas);
  }
  sample.costNs = NowNs() - start;
  return sample;
}

TrimOutcome TakeTrim(const Context& ctx, size_t pad, bool withSamples) {
  // One trim at a time in the whole process, whichever thread or environment asks.
  static std::mutex trimming;
  std::lock_guard<std::mutex> lock(trimming);
  TrimOutcome outcome;
  if (withSamples) outcome.before = TakeSample(ctx, false);
  ProcessMemory before, after;
  ReadProcessMemory(ctx.files.get(), before);
  double start = NowNs();
  outcome.result = Api().mallocTrim(pad);
  outcome.durationNs = NowNs() - start;
  ReadProcessMemory(ctx.files.get(), after);
  outcome.rssBefore = before.rss;
  outcome.rssAfter = after.rss;
  if (withSamples) outcome.after = TakeSample(ctx, false);
  return outcome;
}

Napi::Value MallinfoToJs(Napi::Env env, const Mallinfo& mi) {
  if (mi.source == nullptr) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("source", mi.source);
  o.Set("arena", static_cast<double>(mi.arena));
  o.Set("ordblks", static_cast<double>(mi.ordblks));
  o.Set("smblks", static_cast<double>(mi.smblks));
  o.Set("hblks", static_cast<double>(mi.hblks));
  o.Set("hblkhd", static_cast<double>(mi.hblkhd));
  o.Set("usmblks", static_cast<double>(mi.usmblks));
  o.Set("fsmblks", static_cast<double>(mi.fsmblks));
  o.Set("uordblks", static_cast<double>(mi.uordblks));
  o.Set("fordblks", static_cast<double>(mi.fordblks));
  o.Set("keepcost", static_cast<double>(mi.keepcost));
  return o;
}

// A sample crosses as one Float64Array (one N-API allocation instead of dozens of property
// sets; this runs on every allocatorStatsSync()). -1 means unknown. Layout, kept in sync with
// SAMPLE in src/backends/glibc.ts:
//   0 glibc serves malloc (0/1)   1 cost ns
//   2..6 rss, rssAnon, rssFile, rssShmem, swap
//   7 counters from (0 none, 1 mallinfo2, 2 mallinfo, 3 malloc_info)   8..17 mallinfo fields in <malloc.h> order
//   18 arenas located (0/1)  19 main mapped  20 main resident  21 thread mapped  22 thread resident
//   23 thread heaps  24 arenas  25 regions match mallinfo.arena (0/1)  26 region scans
//   27 malloc_info (0 not asked, 1 read, 2 unavailable)  28.. malloc_info rows
constexpr size_t kSampleHeader = 28;

Napi::Value SampleToJs(Napi::Env env, const Sample& s) {
  const size_t rows = s.mallocInfoRows.size();
  Napi::Float64Array array = Napi::Float64Array::New(env, kSampleHeader + rows);
  double* v = array.Data();
  const Mallinfo& mi = s.mallinfo;
  const ArenaMeasure& ar = s.arenas;
  const double header[kSampleHeader] = {
      s.glibc ? 1.0 : 0.0, s.costNs,
      s.process.rss, s.process.rssAnon, s.process.rssFile, s.process.rssShmem, s.process.swap,
      mi.source == nullptr                     ? 0.0
      : strcmp(mi.source, "mallinfo2") == 0    ? 1.0
      : strcmp(mi.source, "malloc_info") == 0 ? 3.0
                                               : 2.0,
      double(mi.arena), double(mi.ordblks), double(mi.smblks), double(mi.hblks), double(mi.hblkhd),
      double(mi.usmblks), double(mi.fsmblks), double(mi.uordblks), double(mi.fordblks), double(mi.keepcost),
      ar.ok ? 1.0 : 0.0, ar.mainMapped, ar.mainResident, ar.threadMapped, ar.threadResident,
      double(ar.heaps), double(ar.arenas), ar.matchesMallinfo ? 1.0 : 0.0, double(ar.scans),
      !s.withMallocInfo ? 0.0 : s.mallocInfoOk ? 1.0 : 2.0,
  };
  memcpy(v, header, sizeof header);
  if (rows > 0) memcpy(v + kSampleHeader, s.mallocInfoRows.data(), rows * sizeof(double));
  return array;
}

Napi::Value TrimToJs(Napi::Env env, const TrimOutcome& t, bool withSamples) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("result", t.result);
  o.Set("durationNs", t.durationNs);
  o.Set("rssBefore", SizeOrNull(env, t.rssBefore));
  o.Set("rssAfter", SizeOrNull(env, t.rssAfter));
  o.Set("before", withSamples ? SampleToJs(env, t.before) : env.Null());
  o.Set("after", withSamples ? SampleToJs(env, t.after) : env.Null());
  return o;
}

Context State(Napi::Env env) {
  AddonData& data = Data(env);
  if (!data.glibc) data.glibc = std::make_shared<GlibcState>();
  return Context{data.glibc, data.files};
}

// Arguments are validated in TypeScript; these checks only keep bad calls from crashing.
bool BoolArg(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].ToBoolean().Value(); }

size_t PadArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw CodedError(info.Env(), "ERR_INVALID_ARG_TYPE", "pad must be a number");
  double pad = info[0].As<Napi::Number>().DoubleValue();
  if (!(pad >= 0 && pad <= 9007199254740991.0)) throw CodedError(info.Env(), "ERR_OUT_OF_RANGE", "pad out of range");
  return static_cast<size_t>(pad);
}

void RequireGlibc(Napi::Env env) {
  if (Api().version == nullptr) throw CodedError(env, "ERR_ALLOCATOR_UNSUPPORTED", "glibc is not loaded in this process");
}

Napi::Value SampleSyncJs(const Napi::CallbackInfo& info) {
  return SampleToJs(info.Env(), TakeSample(State(info.Env()), BoolArg(info, 0)));
}

Napi::Value SampleAsyncJs(const Napi::CallbackInfo& info) {
  Context ctx = State(info.Env());
  bool withMallocInfo = BoolArg(info, 0);
  return PromiseWorker<Sample>::Run(
      info.Env(), "allocatorStats.glibcSample", [ctx, withMallocInfo](Failure&) { return TakeSample(ctx, withMallocInfo); },
      [](Napi::Env env, Sample& s) { return SampleToJs(env, s); });
}

Napi::Value TrimSyncJs(const Napi::CallbackInfo& info) {
  RequireGlibc(info.Env());
  size_t pad = PadArg(info);
  bool withSamples = BoolArg(info, 1);
  return TrimToJs(info.Env(), TakeTrim(State(info.Env()), pad, withSamples), withSamples);
}

Napi::Value TrimAsyncJs(const Napi::CallbackInfo& info) {
  RequireGlibc(info.Env());
  size_t pad = PadArg(info);
  bool withSamples = BoolArg(info, 1);
  Context ctx = State(info.Env());
  return PromiseWorker<TrimOutcome>::Run(
      info.Env(), "allocatorStats.glibcTrim",
      [ctx, pad, withSamples](Failure&) { return TakeTrim(ctx, pad, withSamples); },
      [withSamples](Napi::Env env, TrimOutcome& t) { return TrimToJs(env, t, withSamples); });
}

Napi::Value MallinfoSyncJs(const Napi::CallbackInfo& info) {
  Mallinfo mi;
  GlibcMallinfo(mi);
  return MallinfoToJs(info.Env(), mi);
}

Napi::Value MallinfoAsyncJs(const Napi::CallbackInfo& info) {
  return PromiseWorker<Mallinfo>::Run(
      info.Env(), "allocatorStats.mallinfo",
      [](Failure&) {
        Mallinfo mi;
        GlibcMallinfo(mi);
        return mi;
      },
      [](Napi::Env env, Mallinfo& mi) { return MallinfoToJs(env, mi); });
}

std::vector<double> MallocInfoRows() {
  std::vector<double> rows;
  ParseMallocInfo(MallocInfoXml(), rows);
  return rows;
}

Napi::Value MallocInfoSyncJs(const Napi::CallbackInfo& info) {
  if (Api().mallocInfo == nullptr) return info.Env().Null();
  return RowsToJs(info.Env(), MallocInfoRows());
}

Napi::Value MallocInfoAsyncJs(const Napi::CallbackInfo& info) {
  bool available = Api().mallocInfo != nullptr;
  return PromiseWorker<std::vector<double>>::Run(
      info.Env(), "allocatorStats.mallocInfo", [](Failure&) { return MallocInfoRows(); },
      [available](Napi::Env env, std::vector<double>& rows) -> Napi::Value {
        if (!available) return env.Null();
        return RowsToJs(env, rows);
      });
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

}  // namespace

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

const char* GlibcVersion() {
  const GlibcApi& api = Api();
  return api.version != nullptr ? api.version() : nullptr;
}

void InitGlibc(Napi::Env env, Napi::Object exports) {
  exports.Set("glibcInfo", Napi::Function::New(env, GlibcInfoJs, "glibcInfo"));
  exports.Set("glibcSampleSync", Napi::Function::New(env, SampleSyncJs, "glibcSampleSync"));
  exports.Set("glibcSample", Napi::Function::New(env, SampleAsyncJs, "glibcSample"));
  exports.Set("glibcTrimSync", Napi::Function::New(env, TrimSyncJs, "glibcTrimSync"));
  exports.Set("glibcTrim", Napi::Function::New(env, TrimAsyncJs, "glibcTrim"));
  exports.Set("glibcMallinfoSync", Napi::Function::New(env, MallinfoSyncJs, "glibcMallinfoSync"));
  exports.Set("glibcMallinfo", Napi::Function::New(env, MallinfoAsyncJs, "glibcMallinfo"));
  exports.Set("glibcMallocInfoSync", Napi::Function::New(env, MallocInfoSyncJs, "glibcMallocInfoSync"));
  exports.Set("glibcMallocInfo", Napi::Function::New(env, MallocInfoAsyncJs, "glibcMallocInfo"));
  exports.Set("glibcMallopt", Napi::Function::New(env, MalloptJs, "glibcMallopt"));
}

}  // namespace allocstats
