/* Force-included (-include) before every C++ source of the musl agent build: makes Debian's
   libstdc++ headers, configured for glibc, compile against musl's C headers. */
#ifndef ALLOCATOR_STATS_LIBSTDCXX_ON_MUSL_H
#define ALLOCATOR_STATS_LIBSTDCXX_ON_MUSL_H

/* os_defines.h asks glibc's version: answer as a glibc >= 2.34 would (pthread_self() and every
   pthread function are in libc, no obsolete isinf/isnan). __GLIBC__ itself stays undefined. */
#ifndef __GLIBC_PREREQ
#define __GLIBC_PREREQ(major, minor) ((major) < 2 || ((major) == 2 && (minor) <= 34))
#endif

/* glibc spells locale_t as __locale_t too; c++locale.h uses that name. */
#include <locale.h>
typedef locale_t __locale_t;

/* Read c++config.h now so that what it claims of glibc can be taken back below. */
#include <bits/c++config.h>

/* glibc-only pthread functions (musl has only the CLOCK_REALTIME timed waits). */
#undef _GLIBCXX_USE_PTHREAD_COND_CLOCKWAIT
#undef _GLIBCXX_USE_PTHREAD_MUTEX_CLOCKLOCK
#undef _GLIBCXX_USE_PTHREAD_RWLOCK_CLOCKLOCK

#endif
