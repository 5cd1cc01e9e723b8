#include "tcmalloc.h"

#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "backend.h"
#include "common.h"
#include "detect.h"
#include "procfs.h"

namespace allocstats {

namespace {

struct TcmallocApi {
  int (*getNumeric)(const char*, size_t*) = nullptr;
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

// The numeric properties read on every sample; the wire names are the property names.
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
  enum : size_t { PROPERTIES(PROPERTY_INDEX) kCount };
  static constexpr const char* kNames[] = {PROPERTIES(PROPERTY_NAME) nullptr};
};
ALLOCSTATS_DECLARE_FIELDS(NoField, ALLOCSTATS_NO_FIELDS);

bool Serving() { return Api().getNumeric != nullptr; }

// NaN: a property this tcmalloc does not know.
double Property(const char* name) {
  size_t v = 0;
  return Api().getNumeric(name, &v) ? static_cast<double>(v) : kUnknown;
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
    if (getNumeric != nullptr) {
      std::string library = LibraryOf(reinterpret_cast<void*>(getNumeric));
      if (d.backend == nullptr && TcmallocServes(getNumeric)) {
        d.backend = this;
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
      } else if (d.backend != this) {
        d.inactive.emplace_back("tcmalloc", library);
      }
  }

  }

  const char* Name() const override { return "tcmalloc"; }
  bool Serving() const override { return Api().getNumeric != nullptr; }
  bool CanTrim() const override { return Serving() && Api().releaseFreeMemory != nullptr; }
  FieldNames SampleFields() const override { return NamesOf<SampleField>(); }
  FieldNames SampleArgs() const override { return NamesOf<NoField>(); }
  FieldNames TrimFields() const override { return NamesOf<NoField>(); }
  FieldNames TrimArgs() const override { return NamesOf<NoField>(); }

  void Sample(const Call&, Record& out) const override {
    for (size_t i = 0; i < SampleField::kCount; i++) out[i] = Property(SampleField::kNames[i]);
  }
  int Trim(const Call&, Record&) const override {
    Api().releaseFreeMemory();
    return 0;
  }
  void Extras(Napi::Env env, Napi::Object exports) const override;
};

// Any properties by name (tcmalloc.property(), settings); names were checked in TypeScript.
Napi::Value PropertiesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "names must be an array");
  Napi::Array names = info[0].As<Napi::Array>();
  Napi::Float64Array values = Napi::Float64Array::New(env, names.Length());
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value name = names.Get(i);
    if (!name.IsString()) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "names must be strings");
    values[i] = Serving() ? Property(name.As<Napi::String>().Utf8Value().c_str()) : kUnknown;
  }
  return values;
}

void RequireTcmalloc(Napi::Env env) {
  if (Api().getNumeric == nullptr || Api().releaseFreeMemory == nullptr) {
    throw CodedError(env, "ERR_ALLOCATOR_UNSUPPORTED", "tcmalloc does not serve malloc() in this process");
  }
}

Napi::Value SetPropertyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireTcmalloc(env);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    throw CodedError(env, "ERR_INVALID_ARG_TYPE", "setProperty(name, value) takes a string and a number");
  }
  double value = info[1].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= 9007199254740991.0) || std::floor(value) != value) {
    throw CodedError(env, "ERR_OUT_OF_RANGE", "value out of range");
  }
  if (Api().setNumeric == nullptr) return Napi::Boolean::New(env, false);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Boolean::New(env, Api().setNumeric(name.c_str(), static_cast<size_t>(value)) != 0);
}

// Returns the rate in effect (after setting it when a number is given), or null if this
// tcmalloc does not export the release-rate functions.
Napi::Value ReleaseRateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireTcmalloc(env);
  const TcmallocApi& api = Api();
  if (api.getReleaseRate == nullptr || api.setReleaseRate == nullptr) return env.Null();
  void* self = api.instance();
  if (self == nullptr) return env.Null();
  if (info.Length() > 0 && info[0].IsNumber()) {
    double rate = info[0].As<Napi::Number>().DoubleValue();
    if (!(rate >= 0 && rate <= 1e6)) throw CodedError(env, "ERR_OUT_OF_RANGE", "release rate out of range");
    api.setReleaseRate(self, rate);
  }
  return Napi::Number::New(env, api.getReleaseRate(self));
}

void Tcmalloc::Extras(Napi::Env env, Napi::Object exports) const {
  exports.Set("tcmallocProperties", Napi::Function::New(env, PropertiesJs, "tcmallocProperties"));
  exports.Set("tcmallocSetProperty", Napi::Function::New(env, SetPropertyJs, "tcmallocSetProperty"));
  exports.Set("tcmallocReleaseRate", Napi::Function::New(env, ReleaseRateJs, "tcmallocReleaseRate"));
}

}  // namespace

const Backend& TcmallocBackend() {
  static const Tcmalloc backend;
  return backend;
}

}  // namespace allocstats
