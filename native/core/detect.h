// Which allocator serves malloc() in this process. Decided once per process (the allocator
// cannot change after start-up) by running each backend's probe, in the table's order.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace allocstats {

class Backend;

struct Detection {
  const Backend* backend = nullptr;  // the backend whose allocator serves malloc(); null if none
  std::string name = "unknown";
  std::string version;                 // the allocator's own version string; empty when it has none
  std::vector<double> versionNumbers;  // when it reports numbers instead (formatted in TypeScript)
  std::string versionSuffix;           // tcmalloc's patch string
  std::string method;                  // how it was decided, for notes
  std::string library;                 // object that defines the allocator's symbols, when known
  std::string symbolPrefix;            // jemalloc: "", "je_" or "_rjem_"
  // Allocators whose symbols are present but which do not serve malloc.
  std::vector<std::pair<std::string, std::string>> inactive;  // (name, library)
};

const Detection& DetectAllocator();

// For the probes in each allocator's file: a block from malloc() that the compiler cannot
// elide, written so that counters of resident or committed memory see it.
constexpr size_t kProbeBytes = 1 << 20;
void* ProbeAllocate(size_t bytes);
void ProbeFree(void* block);
std::string LibraryOf(void* symbol);

}  // namespace allocstats
