// Force-included (binding.gyp, portable builds only) into every source of a prebuild, so the
// binary loads on glibc 2.28 (Debian 10, RHEL 8, Ubuntu 20.04: the oldest glibc Node >= 20's own
// Linux binaries run on) though it is built against newer headers. test/packaging/prebuilds.test.ts reads
// each prebuild's dynamic symbol table to prove the newest GLIBC_ version it needs.
//
// - dlsym, dlvsym and dladdr moved into libc in 2.34 with a new default version; the old versions
//   still exist everywhere (in libdl before 2.34, which Node itself links). What the linked-in
//   copy of libstdc++ needs is in glibc-compat.cc.
// - pthread_cond_clockwait (2.30) does not exist in 2.28: libstdc++ uses it for
//   condition_variable waits on steady_clock when the headers have it. Without it the same
//   wait goes through pthread_cond_timedwait.
//
// Nothing here applies outside glibc on x86_64 and aarch64, so a from-source build on musl or
// on another architecture compiles as if this file were absent.
#ifndef ALLOCATOR_STATS_GLIBC_COMPAT_H
#define ALLOCATOR_STATS_GLIBC_COMPAT_H

#include <features.h>

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))

#if defined(__x86_64__)
#define ALLOCATOR_STATS_GLIBC_BASE "GLIBC_2.2.5"
#else
#define ALLOCATOR_STATS_GLIBC_BASE "GLIBC_2.17"
#endif

__asm__(".symver dlsym,dlsym@" ALLOCATOR_STATS_GLIBC_BASE);
__asm__(".symver dlvsym,dlvsym@" ALLOCATOR_STATS_GLIBC_BASE);
__asm__(".symver dladdr,dladdr@" ALLOCATOR_STATS_GLIBC_BASE);

#ifdef __cplusplus
// Include libstdc++'s configuration first, then take back what glibc 2.28 lacks; its include
// guard keeps the undef in force for every standard header included after this one.
#include <bits/c++config.h>
#undef _GLIBCXX_USE_PTHREAD_COND_CLOCKWAIT
#endif

#endif  // __GLIBC__ on x86_64/aarch64

#endif  // ALLOCATOR_STATS_GLIBC_COMPAT_H
