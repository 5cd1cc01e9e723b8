#include "glibc/symbols.h"

#include <dlfcn.h>

namespace allocstats {

namespace {

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

}  // namespace

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

}  // namespace allocstats
