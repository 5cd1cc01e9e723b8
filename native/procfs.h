// Fast reads of this process's memory from the kernel: /proc/self/status, /proc/self/maps,
// page residency with mincore(), and fault-free reads of its own memory.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace allocstats {

// Bytes; -1 when the kernel does not report the field.
struct ProcessMemory {
  double rss = -1;
  double rssAnon = -1;
  double rssFile = -1;
  double rssShmem = -1;
  double swap = -1;
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
  int mem() const;
  int pid() const;

 private:
  int status_ = -1;
  int mem_ = -1;
  int pid_ = 0;
};

size_t PageSize();
bool ReadProcessMemory(const ProcFiles* files, ProcessMemory& out);
Napi::Object ProcessMemoryToJs(Napi::Env env, const ProcessMemory& memory);

// Resident bytes in [start, start + length). -1 if part of the range is not mapped.
double ResidentBytes(uintptr_t start, size_t length, std::vector<unsigned char>& scratch);

bool ReadSelfMaps(std::string& out);

// Copies `length` bytes at address `source` of this process without risking a fault
// (the mapping may vanish under another thread). Returns false if any byte was unreadable.
bool SafeRead(const ProcFiles* files, void* destination, uintptr_t source, size_t length);

// Several such reads in one system call. Returns false if any byte was unreadable.
bool SafeReadMany(const ProcFiles* files, void* const* destinations, const uintptr_t* sources, size_t length,
                  size_t count);

void InitProcfs(Napi::Env env, Napi::Object exports);

}  // namespace allocstats
