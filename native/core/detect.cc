#include "core/detect.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "core/backend.h"

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

}  // namespace allocstats
