// Fast reads of this process's memory from the kernel: /proc/self/statm and status,
// page residency with mincore(), and fault-free reads of its own memory.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace allocstats {

// Bytes; NaN when not read or not reported by the kernel.
struct ProcessMemory {
  double rss = NAN;
  double rssAnon = NAN;
  double rssFile = NAN;
  double rssShmem = NAN;
  double swap = NAN;
};

// Files kept open per environment: opening a /proc path costs more than reading it.
// After a fork() the descriptors describe the parent, so a forked child stops using them.
class ProcFiles {
 public:
  ProcFiles();
  ~ProcFiles();
  ProcFiles(const ProcFiles&) = delete;
  ProcFiles& operator=(const ProcFiles&) = delete;
  int status() const;  // -1 when it must be opened afresh
  int statm() const;
  int mem() const;
  int pid() const;

 private:
  int status_ = -1;
  int statm_ = -1;
  int mem_ = -1;
  int pid_ = 0;
};

size_t PageSize();
// /proc/self/status: every field of ProcessMemory.
bool ReadProcessStatus(const ProcFiles* files, ProcessMemory& out);
// /proc/self/statm: rss and rssAnon (resident − shared) only, at a seventh of the cost.
bool ReadProcessStatm(const ProcFiles* files, ProcessMemory& out);

// Resident bytes in [start, start + length). -1 if part of the range is not mapped.
// `tail`, when given, receives the bytes of the run of non-resident pages that ends the range.
double ResidentBytes(uintptr_t start, size_t length, std::vector<unsigned char>& scratch, double* tail = nullptr);

// Copies `length` bytes at address `source` of this process without risking a fault
// (the mapping may vanish under another thread). Returns false if any byte was unreadable.
bool SafeRead(const ProcFiles* files, void* destination, uintptr_t source, size_t length);

// Several such reads in one system call. Returns false if any byte was unreadable.
bool SafeReadMany(const ProcFiles* files, void* const* destinations, const uintptr_t* sources, size_t length,
                  size_t count);

}  // namespace allocstats
