// gperftools tcmalloc through its C API (MallocExtension_*), resolved with dlsym; never linked.
#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/detect.h"
#include "core/error.h"

namespace allocstats {

namespace {

struct TcmallocApi {
  int (*getNumeric)(const char*, size_t*) = nullptr;
  void (*getStats)(char*, int) = nullptr;
  int (*setNumeric)(const char*, size_t) = nullptr;
  void (*releaseFreeMemory)() = nullptr;
  // The release rate has no C entry point in gperftools; the implementation's member
  // functions are exported and read no member data, so they are called with the
  // registered MallocExtension instance as `this`.
  void* (*instance)() = nullptr;
  void (*setReleaseRate)(void*, double) = nullptr;
  double (*getReleaseRate)(void*) = nullptr;
};

// Resolved once per process, only when tcmalloc serves malloc.
const TcmallocApi& Api() {
  static const TcmallocApi api = [] {
    TcmallocApi a;
    if (DetectAllocator().backend != &TcmallocBackend()) return a;
    a.getNumeric = reinterpret_cast<int (*)(const char*, size_t*)>(dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
    a.getStats = reinterpret_cast<void (*)(char*, int)>(dlsym(RTLD_DEFAULT, "MallocExtension_GetStats"));
    a.setNumeric = reinterpret_cast<int (*)(const char*, size_t)>(dlsym(RTLD_DEFAULT, "MallocExtension_SetNumericProperty"));
    a.releaseFreeMemory = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"));
    a.instance = reinterpret_cast<void* (*)()>(dlsym(RTLD_DEFAULT, "_ZN15MallocExtension8instanceEv"));
    a.setReleaseRate =
        reinterpret_cast<void (*)(void*, double)>(dlsym(RTLD_DEFAULT, "_ZN22TCMallocImplementation20SetMemoryReleaseRateEd"));
    a.getReleaseRate =
        reinterpret_cast<double (*)(void*)>(dlsym(RTLD_DEFAULT, "_ZN22TCMallocImplementation20GetMemoryReleaseRateEv"));
    if (a.instance == nullptr) a.setReleaseRate = nullptr, a.getReleaseRate = nullptr;
    return a;
  }();
  return api;
}

// The numeric properties a sample reports; the wire names are the property names. `source`
// (not a property) says where they came from: 1 one statistics snapshot, 0 a property each.
#define PROPERTIES(X)                                                                              \
  X(currentAllocated, "generic.current_allocated_bytes") X(heapSize, "generic.heap_size")           \
  X(totalPhysical, "generic.total_physical_bytes") X(pageheapFree, "tcmalloc.pageheap_free_bytes") \
  X(pageheapUnmapped, "tcmalloc.pageheap_unmapped_bytes")                                          \
  X(threadCaches, "tcmalloc.current_total_thread_cache_bytes")                                     \
  X(threadCacheFree, "tcmalloc.thread_cache_free_bytes")                                           \
  X(centralCacheFree, "tcmalloc.central_cache_free_bytes")                                         \
  X(transferCacheFree, "tcmalloc.transfer_cache_free_bytes")
#define PROPERTY_INDEX(id, name) id,
#define PROPERTY_NAME(id, name) name,
struct SampleField {
  enum : size_t { PROPERTIES(PROPERTY_INDEX) kProperties, source = kProperties, kCount };
  static constexpr const char* kNames[] = {PROPERTIES(PROPERTY_NAME) "source", nullptr};
};
ALLOCSTATS_DECLARE_FIELDS(NoField, ALLOCSTATS_NO_FIELDS);

bool Serving() { return Api().getNumeric != nullptr; }

// NaN: a property this tcmalloc does not know.
double Property(const char* name) {
  size_t v = 0;
  return Api().getNumeric(name, &v) ? static_cast<double>(v) : kUnknown;
}

// The lines of gperftools' statistics text a sample reads, by their labels.
enum StatsLine : size_t { kInUse, kPageheapFree, kCentral, kTransfer, kThread, kMetadata, kPhysical, kUnmapped, kVirtual, kStatsLines };
constexpr const char* kStatsLabels[kStatsLines] = {
    "Bytes in use by application",
    "Bytes in page heap freelist",
    "Bytes in central cache freelist",
    "Bytes in transfer cache freelist",
    "Bytes in thread cache freelists",
    "Bytes in malloc metadata",
    "Actual memory used (physical + swap)",
    "Bytes released to OS (aka unmapped)",
    "Virtual address space used",
};

// Every numeric property of a sample but the page heap's two walks all size classes and thread
// caches (ExtractStats(), taking each central free list's lock): seven walks for one sample.
// MallocExtension_GetStats() prints the same figures from one walk — one consistent snapshot at
// about a fifth of the cost — in a form stable across gperftools releases ("MALLOC:  <bytes>
// (<MiB> MiB) <label>"); a buffer under 10000 bytes asks for the short form. Returns false,
// leaving the properties to be read one by one, when the text is not that form or its sums
// do not add up.
bool SampleFromStats(Record& out) {
  if (Api().getStats == nullptr) return false;
  char text[4096];
  text[0] = '\0';
  Api().getStats(text, static_cast<int>(sizeof text));
  text[sizeof text - 1] = '\0';
  uint64_t v[kStatsLines] = {};
  bool seen[kStatsLines] = {};
  for (const char* line = text; *line != '\0';) {
    const char* end = std::strchr(line, '\n');
    if (end == nullptr) end = line + std::strlen(line);
    if (std::strncmp(line, "MALLOC:", 7) == 0) {
      const char* p = line + 7;
      while (p < end && (*p == ' ' || *p == '+' || *p == '=')) p++;
      if (p < end && *p >= '0' && *p <= '9') {
        char* after = nullptr;
        unsigned long long value = std::strtoull(p, &after, 10);
        const char* label = after;
        const void* paren = std::memchr(after, ')', static_cast<size_t>(end - after));
        if (paren != nullptr) label = static_cast<const char*>(paren) + 1;
        while (label < end && *label == ' ') label++;
        size_t length = static_cast<size_t>(end - label);
        for (size_t i = 0; i < kStatsLines; i++) {
          if (std::strlen(kStatsLabels[i]) == length && std::memcmp(label, kStatsLabels[i], length) == 0) {
            if (seen[i]) return false;
            v[i] = value, seen[i] = true;
          }
        }
      }
    }
    line = *end == '\0' ? end : end + 1;
  }
  for (bool s : seen) {
    if (!s) return false;
  }
  // The text's own sums: the parts make the memory used, which with the unmapped bytes makes the
  // address space (a label read against the wrong number would break them).
  if (v[kInUse] + v[kPageheapFree] + v[kCentral] + v[kTransfer] + v[kThread] + v[kMetadata] != v[kPhysical]) return false;
  if (v[kPhysical] + v[kUnmapped] != v[kVirtual] || v[kInUse] > v[kPhysical] || v[kMetadata] > v[kVirtual]) return false;
  auto d = [](uint64_t x) { return static_cast<double>(x); };
  // The properties as gperftools computes them from the same walk.
  out[SampleField::currentAllocated] = d(v[kInUse]);
  out[SampleField::heapSize] = d(v[kVirtual] - v[kMetadata]);
  out[SampleField::totalPhysical] = d(v[kPhysical]);
  out[SampleField::pageheapFree] = d(v[kPageheapFree]);
  out[SampleField::pageheapUnmapped] = d(v[kUnmapped]);
  out[SampleField::threadCaches] = d(v[kThread]);
  out[SampleField::threadCacheFree] = d(v[kThread]);
  out[SampleField::centralCacheFree] = d(v[kCentral]);
  out[SampleField::transferCacheFree] = d(v[kTransfer]);
  out[SampleField::source] = 1;
  return true;
}

using NumericPropertyFn = int (*)(const char*, size_t*);
using TcVersionFn = const char* (*)(int*, int*, const char**);

// A process-wide counter: other threads may free concurrently, so allow a few attempts.
bool TcmallocServes(NumericPropertyFn get) {
  for (int attempt = 0; attempt < 3; attempt++) {
    size_t before = 0, after = 0;
    if (!get("generic.current_allocated_bytes", &before)) return false;
    void* p = ProbeAllocate(kProbeBytes);
    bool ok = get("generic.current_allocated_bytes", &after);
    ProbeFree(p);
    if (!ok) return false;
    if (after >= before + kProbeBytes / 2) return true;
  }
  return false;
}

class Tcmalloc final : public Backend {
 public:
  void Probe(Detection& d) const override {
    auto getNumeric = reinterpret_cast<NumericPropertyFn>(dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
    if (getNumeric == nullptr) return;
    std::string library = LibraryOf(reinterpret_cast<void*>(getNumeric));
    if (d.backend == nullptr && TcmallocServes(getNumeric)) {
      Claim(d, "tcmalloc", library, "generic.current_allocated_bytes moved on malloc");
      auto tcVersion = reinterpret_cast<TcVersionFn>(dlsym(RTLD_DEFAULT, "tc_version"));
      if (tcVersion != nullptr) {
        int major = 0, minor = 0;
        const char* patch = nullptr;
        tcVersion(&major, &minor, &patch);
        d.versionNumbers = {static_cast<double>(major), static_cast<double>(minor)};
        if (patch != nullptr) d.versionSuffix = patch;
      }
    } else if (d.backend != this) {
      d.inactive.emplace_back("tcmalloc", library);
    }
  }

  const char* Name() const override { return "tcmalloc"; }
  bool Serving() const override { return Api().getNumeric != nullptr; }
  bool CanTrim() const override { return Serving() && Api().releaseFreeMemory != nullptr; }
  WireNames Wire() const override { return WireOf<SampleField, NoField, NoField, NoField>(); }

  void Sample(const Call&, Record& out) const override {
    if (SampleFromStats(out)) return;
    for (size_t i = 0; i < SampleField::kProperties; i++) out[i] = Property(SampleField::kNames[i]);
    out[SampleField::source] = 0;
  }
  int Trim(const Call&, Record&) const override {
    Api().releaseFreeMemory();
    return 0;
  }
  Extras MakeExtras() const override;
};

// Any properties by name (tcmalloc.property(), settings); names were checked in TypeScript.
Value Properties(const ExtraCall& call) {
  const std::vector<Value>& names = call.args[0].items;
  std::vector<double> values(names.size(), kUnknown);
  if (Serving()) {
    for (size_t i = 0; i < names.size(); i++) values[i] = Property(names[i].text.c_str());
  }
  return Value::Floats(std::move(values));
}

void RequireTcmalloc() {
  if (Api().getNumeric == nullptr || Api().releaseFreeMemory == nullptr) ThrowNotServing("tcmalloc");
}

// The value's range was checked in TypeScript (src/allocators/tcmalloc/index.ts).
Value SetProperty(const ExtraCall& call) {
  if (Api().setNumeric == nullptr) return Value::Bool(false);
  return Value::Bool(Api().setNumeric(call.args[0].text.c_str(), static_cast<size_t>(call.args[1].int64)) != 0);
}

// Returns the rate in effect (after setting it when a number is given), or null if this
// tcmalloc does not export the release-rate functions. The rate's range was checked in
// TypeScript (src/allocators/tcmalloc/index.ts).
Value ReleaseRate(const ExtraCall& call) {
  const TcmallocApi& api = Api();
  if (api.getReleaseRate == nullptr || api.setReleaseRate == nullptr) return Value::Null();
  void* self = api.instance();
  if (self == nullptr) return Value::Null();
  if (call.args[0].is(Value::Kind::Number)) api.setReleaseRate(self, call.args[0].number);
  return Value::Number(api.getReleaseRate(self));
}

Extras Tcmalloc::MakeExtras() const {
  const char* const nameAndNumber = "setProperty(name, value) takes a string and a number";
  return {
      {"tcmallocProperties", Extra::Kind::Sync, {{Param::Kind::Strings, "names must be an array", "names must be strings"}},
       nullptr, Properties, {}},
      {"tcmallocSetProperty", Extra::Kind::Sync,
       {{Param::Kind::String, nameAndNumber}, {Param::Kind::Integer, nameAndNumber}}, RequireTcmalloc, SetProperty, {}},
      {"tcmallocReleaseRate", Extra::Kind::Sync, {{Param::Kind::OptionalFinite, "rate must be a finite number"}},
       RequireTcmalloc, ReleaseRate, {}},
  };
}

}  // namespace

const Backend& TcmallocBackend() {
  static const Tcmalloc backend;
  return backend;
}

}  // namespace allocstats
