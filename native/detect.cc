#include "detect.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "glibc.h"

namespace allocstats {

namespace {

// Called through volatile pointers so the compiler cannot elide the malloc/free pair that
// the functional checks rely on.
void* (*volatile g_malloc)(size_t) = malloc;
void (*volatile g_free)(void*) = free;

constexpr size_t kProbeBytes = 1 << 20;

void* ProbeAllocate(size_t bytes) {
  auto* p = static_cast<volatile char*>(g_malloc(bytes));
  if (p != nullptr) {
    // Touch it: some checks count resident or committed memory.
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  }
  return const_cast<char*>(p);
}

std::string LibraryOf(void* symbol) {
  Dl_info info;
  if (symbol != nullptr && dladdr(symbol, &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
  return "";
}

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
using NumericPropertyFn = int (*)(const char*, size_t*);
using TcVersionFn = const char* (*)(int*, int*, const char**);
using MiVersionFn = int (*)();
using MiInHeapFn = bool (*)(const void*);

// jemalloc serves malloc if its per-thread allocation counter moves when we malloc.
// Returns 1 serving, 0 not serving, -1 cannot tell (built without stats).
int JemallocServes(MallctlFn mallctl) {
  uint64_t before = 0, after = 0;
  size_t size = sizeof before;
  if (mallctl("thread.allocated", &before, &size, nullptr, 0) != 0) return -1;
  void* p = ProbeAllocate(kProbeBytes);
  size = sizeof after;
  int rc = mallctl("thread.allocated", &after, &size, nullptr, 0);
  g_free(p);
  if (rc != 0) return -1;
  return after - before >= kProbeBytes ? 1 : 0;
}

// A process-wide counter: other threads may free concurrently, so allow a few attempts.
bool TcmallocServes(NumericPropertyFn get) {
  for (int attempt = 0; attempt < 3; attempt++) {
    size_t before = 0, after = 0;
    if (!get("generic.current_allocated_bytes", &before)) return false;
    void* p = ProbeAllocate(kProbeBytes);
    bool ok = get("generic.current_allocated_bytes", &after);
    g_free(p);
    if (!ok) return false;
    if (after >= before + kProbeBytes / 2) return true;
  }
  return false;
}

bool MimallocServes(MiInHeapFn inHeap) {
  void* p = ProbeAllocate(4096);
  bool owned = p != nullptr && inHeap(p);
  g_free(p);
  return owned;
}

bool GlibcServes(const char** how = nullptr) {
  // A small block from glibc lands in one of its arenas: checked without taking any arena lock.
  // Only when that fails do glibc's counters decide, each read a walk of every free chunk
  // under each arena's lock (tens of ms on a fragmented heap, while allocating threads wait).
  void* probe = ProbeAllocate(64);
  bool held = GlibcArenaHolds(probe);
  g_free(probe);
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
    g_free(p);
    if (!ok) return false;
    // Whether the block came from an arena or from mmap, one of the two counters carries it.
    // Sums stay in size_t: mallinfo() fields may have wrapped.
    size_t used0 = before.uordblks + before.hblkhd;
    size_t used1 = after.uordblks + after.hblkhd;
    if (used1 - used0 >= kProbeBytes && used1 - used0 < (static_cast<size_t>(1) << 40)) return true;
  }
  return false;
}

Detection Detect() {
  Detection d;

  static const char* const kJemallocPrefixes[] = {"", "je_", "_rjem_"};
  for (const char* prefix : kJemallocPrefixes) {
    std::string symbol = std::string(prefix) + "mallctl";
    auto mallctl = reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, symbol.c_str()));
    if (mallctl == nullptr) continue;
    std::string library = LibraryOf(reinterpret_cast<void*>(mallctl));
    int serves = JemallocServes(mallctl);
    const bool confirmed = serves == 1;
    // Without stats the counter cannot confirm it; an unprefixed mallctl that glibc's
    // counters do not contradict is the process allocator.
    if (serves == -1 && prefix[0] == '\0' && !GlibcServes()) serves = 1;
    if (serves == 1 && d.kind == AllocatorKind::Unknown) {
      d.kind = AllocatorKind::Jemalloc;
      d.name = "jemalloc";
      d.library = library;
      d.jemallocPrefix = prefix;
      d.method = confirmed ? "thread.allocated moved on malloc (" + symbol + ")"
                           : "symbol " + symbol + " (built without stats: not confirmed by a counter)";
      const char* version = nullptr;
      size_t size = sizeof version;
      if (mallctl("version", &version, &size, nullptr, 0) == 0 && version != nullptr) d.version = version;
    } else if (serves != 1) {
      d.inactive.emplace_back("jemalloc", library);
    }
  }

  auto getNumeric = reinterpret_cast<NumericPropertyFn>(dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
  if (getNumeric != nullptr) {
    std::string library = LibraryOf(reinterpret_cast<void*>(getNumeric));
    if (d.kind == AllocatorKind::Unknown && TcmallocServes(getNumeric)) {
      d.kind = AllocatorKind::Tcmalloc;
      d.name = "tcmalloc";
      d.library = library;
      d.method = "generic.current_allocated_bytes moved on malloc";
      auto tcVersion = reinterpret_cast<TcVersionFn>(dlsym(RTLD_DEFAULT, "tc_version"));
      if (tcVersion != nullptr) {
        int major = 0, minor = 0;
        const char* patch = nullptr;
        tcVersion(&major, &minor, &patch);
        d.versionNumbers = {static_cast<double>(major), static_cast<double>(minor)};
        if (patch != nullptr) d.versionSuffix = patch;
      }
    } else if (d.kind != AllocatorKind::Tcmalloc) {
      d.inactive.emplace_back("tcmalloc", library);
    }
  }

  auto miVersion = reinterpret_cast<MiVersionFn>(dlsym(RTLD_DEFAULT, "mi_version"));
  auto miInHeap = reinterpret_cast<MiInHeapFn>(dlsym(RTLD_DEFAULT, "mi_is_in_heap_region"));
  if (miVersion != nullptr && miInHeap != nullptr) {
    std::string library = LibraryOf(reinterpret_cast<void*>(miVersion));
    if (d.kind == AllocatorKind::Unknown && MimallocServes(miInHeap)) {
      d.kind = AllocatorKind::Mimalloc;
      d.name = "mimalloc";
      d.library = library;
      d.method = "mi_is_in_heap_region() owns a malloc() block";
      d.versionNumbers = {static_cast<double>(miVersion())};
    } else if (d.kind != AllocatorKind::Mimalloc) {
      d.inactive.emplace_back("mimalloc", library);
    }
  }

  if (d.kind != AllocatorKind::Unknown) return d;

  if (const char* glibc = GlibcVersion()) {
    const char* how = "";
    if (GlibcServes(&how)) {
      d.kind = AllocatorKind::Glibc;
      d.name = "glibc";
      d.version = glibc;
      d.method = how;
      d.library = LibraryOf(dlsym(RTLD_DEFAULT, "gnu_get_libc_version"));
    } else {
      d.method = "glibc is loaded but its counters did not move on malloc, and no known allocator claimed it";
    }
    return d;
  }

#if defined(__linux__) && !defined(__GLIBC__)
  // Built against musl; its malloc (mallocng) has no statistics API.
  d.kind = AllocatorKind::Musl;
  d.name = "musl";
  d.method = "built against musl libc and no other allocator serves malloc";
#else
  d.method = "no known allocator's symbols serve malloc";
#endif
  return d;
}

Napi::Value DetectJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Detection& d = DetectAllocator();
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", d.name);
  result.Set("version", d.version.empty() ? env.Null() : Napi::String::New(env, d.version));
  Napi::Array numbers = Napi::Array::New(env, d.versionNumbers.size());
  for (size_t i = 0; i < d.versionNumbers.size(); i++) numbers.Set(static_cast<uint32_t>(i), d.versionNumbers[i]);
  result.Set("versionNumbers", numbers);
  result.Set("versionSuffix", d.versionSuffix.empty() ? env.Null() : Napi::String::New(env, d.versionSuffix));
  result.Set("method", d.method);
  result.Set("library", d.library.empty() ? env.Null() : Napi::String::New(env, d.library));
  Napi::Array inactive = Napi::Array::New(env, d.inactive.size());
  for (size_t i = 0; i < d.inactive.size(); i++) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", d.inactive[i].first);
    entry.Set("library", d.inactive[i].second.empty() ? env.Null() : Napi::String::New(env, d.inactive[i].second));
    inactive.Set(static_cast<uint32_t>(i), entry);
  }
  result.Set("inactive", inactive);
  return result;
}

}  // namespace

const Detection& DetectAllocator() {
  // Process-wide and immutable once decided: which allocator serves malloc never changes.
  static std::once_flag once;
  static Detection detection;
  std::call_once(once, [] { detection = Detect(); });
  return detection;
}

void InitDetect(Napi::Env env, Napi::Object exports) {
  exports.Set("detect", Napi::Function::New(env, DetectJs, "detect"));
}

}  // namespace allocstats
