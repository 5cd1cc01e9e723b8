#include "detect.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "backend.h"

namespace allocstats {

namespace {

// Called through volatile pointers so the compiler cannot elide the malloc/free pair that
// the functional checks rely on.
void* (*volatile g_malloc)(size_t) = malloc;
void (*volatile g_free)(void*) = free;

Detection Detect() {
  Detection d;
  // Each backend probes in table order: the first that serves malloc() claims it; the others
  // list themselves as present but inactive when their symbols are there.
  for (const Backend* backend : Backends()) backend->Probe(d);
  if (d.backend != nullptr || !d.method.empty()) return d;
#if defined(__linux__) && !defined(__GLIBC__)
  // Built against musl; its malloc (mallocng) has no statistics API.
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

void* ProbeAllocate(size_t bytes) {
  auto* p = static_cast<volatile char*>(g_malloc(bytes));
  if (p != nullptr) {
    // Touch it: some checks count resident or committed memory.
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  }
  return const_cast<char*>(p);
}

void ProbeFree(void* block) { g_free(block); }

std::string LibraryOf(void* symbol) {
  Dl_info info;
  if (symbol != nullptr && dladdr(symbol, &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
  return "";
}

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
