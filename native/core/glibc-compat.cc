// Portable builds only (binding.gyp, ALLOCATOR_STATS_PORTABLE=1): what the copy of libstdc++
// linked into the addon needs from glibc, in a form glibc 2.28 has. Each definition here is
// hidden, so the linker binds libstdc++'s references to it instead of to the newest versions of
// the 2.36 build machine, and nothing leaves the addon.
#include <features.h>

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))

#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>

#if defined(__x86_64__)
#define COMPAT_BASE "GLIBC_2.2.5"
#else
#define COMPAT_BASE "GLIBC_2.17"
#endif

#define COMPAT_HIDDEN __attribute__((visibility("hidden")))

extern "C" {

// libstdc++ reads this (glibc >= 2.32) before skipping atomic reference counts. 0 means "other
// threads may exist", so every count stays atomic: always correct.
COMPAT_HIDDEN char __libc_single_threaded = 0;

// pthread_once and the thread-specific keys (used by libstdc++'s condition_variable.o) got new
// default versions in 2.34, when libpthread moved into libc. Call the original versions, which
// every glibc has (in libpthread before 2.34, which Node itself links).
typedef unsigned int compat_key_t;
int compat_pthread_once(int* once, void (*init)(void));
int compat_pthread_key_create(compat_key_t* key, void (*destructor)(void*));
int compat_pthread_key_delete(compat_key_t key);
void* compat_pthread_getspecific(compat_key_t key);
int compat_pthread_setspecific(compat_key_t key, const void* value);
__asm__(".symver compat_pthread_once,pthread_once@" COMPAT_BASE);
__asm__(".symver compat_pthread_key_create,pthread_key_create@" COMPAT_BASE);
__asm__(".symver compat_pthread_key_delete,pthread_key_delete@" COMPAT_BASE);
__asm__(".symver compat_pthread_getspecific,pthread_getspecific@" COMPAT_BASE);
__asm__(".symver compat_pthread_setspecific,pthread_setspecific@" COMPAT_BASE);

COMPAT_HIDDEN int pthread_once(int* once, void (*init)(void)) { return compat_pthread_once(once, init); }
COMPAT_HIDDEN int pthread_key_create(compat_key_t* key, void (*destructor)(void*)) {
  return compat_pthread_key_create(key, destructor);
}
COMPAT_HIDDEN int pthread_key_delete(compat_key_t key) { return compat_pthread_key_delete(key); }
COMPAT_HIDDEN void* pthread_getspecific(compat_key_t key) { return compat_pthread_getspecific(key); }
COMPAT_HIDDEN int pthread_setspecific(compat_key_t key, const void* value) {
  return compat_pthread_setspecific(key, value);
}

// std::random_device (linked in through libstdc++'s string instantiations, never used by the
// addon) may call arc4random, new in 2.36. getrandom exists since 2.25.
COMPAT_HIDDEN uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
  }
  return value;
}

}  // extern "C"

#endif
