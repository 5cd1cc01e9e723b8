#include "core/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <cstdio>
#include <cstring>


namespace allocstats {

namespace {
// Set in a forked child: descriptors opened by the parent describe the parent.
std::atomic<bool> g_forked{false};
}  // namespace

ProcFiles::ProcFiles() {
#ifdef __linux__
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, [] { g_forked.store(true); }); });
  pid_ = getpid();
  status_ = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  statm_ = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  mem_ = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
#endif
}

ProcFiles::~ProcFiles() {
  if (status_ >= 0) close(status_);
  if (statm_ >= 0) close(statm_);
  if (mem_ >= 0) close(mem_);
}

int ProcFiles::status() const { return g_forked.load(std::memory_order_relaxed) ? -1 : status_; }
int ProcFiles::statm() const { return g_forked.load(std::memory_order_relaxed) ? -1 : statm_; }
int ProcFiles::mem() const { return g_forked.load(std::memory_order_relaxed) ? -1 : mem_; }
int ProcFiles::pid() const { return g_forked.load(std::memory_order_relaxed) ? getpid() : pid_; }

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

namespace {

// "RssAnon:\t   1234 kB" -> bytes.
double KbField(const char* text, const char* name) {
  const char* at = strstr(text, name);
  if (at == nullptr) return NAN;
  at += strlen(name);
  char* end = nullptr;
  unsigned long long kb = strtoull(at, &end, 10);
  if (end == at) return NAN;
  return static_cast<double>(kb) * 1024.0;
}

// One read of a small procfs file into `buffer` (NUL-terminated). pread at offset 0
// regenerates the file, so a kept descriptor is reused; returns the bytes read.
size_t ReadSmall(int kept, const char* path, char* buffer, size_t size) {
  int fd = kept >= 0 ? kept : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t used = 0;
  for (;;) {
    ssize_t n = pread(fd, buffer + used, size - 1 - used, static_cast<off_t>(used));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<size_t>(n);
    if (used == size - 1) break;
  }
  if (fd != kept) close(fd);
  buffer[used] = '\0';
  return used;
}

}  // namespace

bool ReadProcessStatm(const ProcFiles* files, ProcessMemory& out) {
#ifdef __linux__
  char buffer[256];
  if (ReadSmall(files != nullptr ? files->statm() : -1, "/proc/self/statm", buffer, sizeof buffer) == 0) return false;
  // Three space-separated page counts first; parsed by hand (sscanf cost a tenth of the read).
  unsigned long long fields[3] = {0, 0, 0};
  const char* at = buffer;
  for (unsigned long long& field : fields) {
    char* end = nullptr;
    field = strtoull(at, &end, 10);
    if (end == at) return false;
    at = end;
  }
  const unsigned long long resident = fields[1], shared = fields[2];
  const double page = static_cast<double>(PageSize());
  out.rss = static_cast<double>(resident) * page;
  out.rssAnon = static_cast<double>(resident >= shared ? resident - shared : 0) * page;
  return true;
#else
  return false;
#endif
}

bool ReadProcessStatus(const ProcFiles* files, ProcessMemory& out) {
#ifdef __linux__
  char buffer[4096];
  if (ReadSmall(files != nullptr ? files->status() : -1, "/proc/self/status", buffer, sizeof buffer) == 0) return false;
  out.rss = KbField(buffer, "\nVmRSS:");
  out.rssAnon = KbField(buffer, "\nRssAnon:");
  out.rssFile = KbField(buffer, "\nRssFile:");
  out.rssShmem = KbField(buffer, "\nRssShmem:");
  out.swap = KbField(buffer, "\nVmSwap:");
  return !std::isnan(out.rss);
#else
  return false;
#endif
}

double ResidentBytes(uintptr_t start, size_t length, std::vector<unsigned char>& scratch, double* tail) {
#ifdef __linux__
  const size_t page = PageSize();
  uintptr_t begin = start & ~(page - 1);
  uintptr_t end = (start + length + page - 1) & ~(page - 1);
  // Bounded scratch: 64 Ki pages (256 MiB of address space) per mincore call.
  const size_t chunkPages = 65536;
  if (scratch.size() < chunkPages) scratch.resize(chunkPages);
  double resident = 0;
  size_t run = 0;  // non-resident pages since the last resident one
  for (uintptr_t at = begin; at < end;) {
    size_t pages = (end - at) / page;
    if (pages > chunkPages) pages = chunkPages;
    if (mincore(reinterpret_cast<void*>(at), pages * page, scratch.data()) != 0) return -1;
    size_t count = 0;
    for (size_t i = 0; i < pages; i++) count += scratch[i] & 1;
    resident += static_cast<double>(count) * static_cast<double>(page);
    if (tail != nullptr) {
      size_t trailing = 0;
      while (trailing < pages && (scratch[pages - 1 - trailing] & 1) == 0) trailing++;
      run = trailing == pages ? run + pages : trailing;
    }
    at += pages * page;
  }
  if (tail != nullptr) *tail = static_cast<double>(run) * static_cast<double>(page);
  return resident;
#else
  return -1;
#endif
}

bool SafeRead(const ProcFiles* files, void* destination, uintptr_t source, size_t length) {
  void* const destinations[1] = {destination};
  return SafeReadMany(files, destinations, &source, length, 1);
}

bool SafeReadMany(const ProcFiles* files, void* const* destinations, const uintptr_t* sources, size_t length,
                  size_t count) {
#ifdef __linux__
  if (count == 0) return true;
  // On the stack for the usual handful of regions: a sample leaves no freed chunk behind.
  constexpr size_t kOnStack = 32;
  struct iovec localStack[kOnStack], remoteStack[kOnStack];
  std::vector<struct iovec> localHeap, remoteHeap;
  struct iovec* local = localStack;
  struct iovec* remote = remoteStack;
  if (count > kOnStack) {
    localHeap.resize(count), remoteHeap.resize(count);
    local = localHeap.data(), remote = remoteHeap.data();
  }
  for (size_t i = 0; i < count; i++) {
    local[i] = {destinations[i], length};
    remote[i] = {reinterpret_cast<void*>(sources[i]), length};
  }
  ssize_t n = process_vm_readv(files != nullptr ? files->pid() : getpid(), local, count, remote, count, 0);
  if (n == static_cast<ssize_t>(length * count)) return true;
  if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return false;
  // process_vm_readv can be filtered out (seccomp); /proc/self/mem fails cleanly too.
  int kept = files != nullptr ? files->mem() : -1;
  int fd = kept >= 0 ? kept : open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = true;
  for (size_t i = 0; i < count && ok; i++) {
    ok = pread(fd, destinations[i], length, static_cast<off_t>(sources[i])) == static_cast<ssize_t>(length);
  }
  if (fd != kept) close(fd);
  return ok;
#else
  return false;
#endif
}

}  // namespace allocstats
