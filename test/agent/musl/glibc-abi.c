/* glibc symbols that Debian's static libstdc++ and libgcc_eh (built against glibc) reference and
   musl lacks, for the musl agent build. Hidden: they stay inside the agent library. */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "struct dl_find_object below has the layout of x86_64 and aarch64 only"
#endif

#define HIDDEN __attribute__((visibility("hidden")))

/* glibc >= 2.32: nonzero while the process has one thread. Always 0 here: libstdc++ then
   always takes its atomic paths, which are right in any process. */
HIDDEN char __libc_single_threaded = 0;

/* libgcc's unwinder takes the process for single-threaded (and skips its locks and its
   pthread_once) unless this glibc-internal name resolves; musl exports only pthread_key_create. */
HIDDEN int __pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) { return pthread_key_create(key, destructor); }

/* libstdc++'s std::random_device. */
HIDDEN uint32_t arc4random(void) {
  uint32_t value = 0;
  unsigned char* p = (unsigned char*)&value;
  size_t got = 0;
  while (got < sizeof value) {
    ssize_t n = getrandom(p + got, sizeof value - got, 0);
    if (n > 0) got += (size_t)n;
  }
  return value;
}

/* glibc >= 2.35's <dlfcn.h> layout (no dlfo_eh_dbase, no dlfo_eh_count on x86_64 and aarch64). */
struct dl_find_object {
  unsigned long long dlfo_flags;
  void* dlfo_map_start;
  void* dlfo_map_end;
  struct link_map* dlfo_link_map;
  void* dlfo_eh_frame;
  unsigned long long dlfo_reserved[7];
};

struct search {
  uintptr_t pc;
  struct dl_find_object* result;
  int found;
};

static int Visit(struct dl_phdr_info* info, size_t size, void* data) {
  struct search* s = data;
  const ElfW(Phdr)* eh = NULL;
  uintptr_t start = UINTPTR_MAX, end = 0;
  int inside = 0;
  (void)size;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_GNU_EH_FRAME) eh = ph;
    if (ph->p_type != PT_LOAD) continue;
    const uintptr_t from = info->dlpi_addr + ph->p_vaddr, to = from + ph->p_memsz;
    if (from < start) start = from;
    if (to > end) end = to;
    if (s->pc >= from && s->pc < to) inside = 1;
  }
  if (!inside) return 0;
  s->found = 1;
  s->result->dlfo_flags = 0;
  s->result->dlfo_map_start = (void*)start;
  s->result->dlfo_map_end = (void*)end;
  s->result->dlfo_link_map = NULL;
  s->result->dlfo_eh_frame = eh != NULL ? (void*)(info->dlpi_addr + eh->p_vaddr) : NULL;
  return 1;
}

/* The unwinder of GCC >= 12 asks this (glibc >= 2.35) for the .eh_frame_hdr of the object that
   holds a code address, and does not fall back on dl_iterate_phdr itself: answered from it. */
HIDDEN int _dl_find_object(void* address, struct dl_find_object* result) {
  struct search s = {(uintptr_t)address, result, 0};
  dl_iterate_phdr(Visit, &s);
  return s.found ? 0 : -1;
}
