// Which allocator serves malloc() in this process. Decided once per process: the
// allocator cannot change after start-up.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

namespace allocstats {

enum class AllocatorKind { Glibc, Jemalloc, Tcmalloc, Mimalloc, Musl, Unknown };

struct Detection {
  AllocatorKind kind = AllocatorKind::Unknown;
  std::string name = "unknown";
  std::string version;       // the allocator's own version string; empty when it has none
  std::vector<double> versionNumbers;  // when it reports numbers instead (formatted in TypeScript)
  std::string versionSuffix;           // tcmalloc's patch string
  std::string method;        // how it was decided, for notes
  std::string library;       // object that defines the allocator's symbols, when known
  std::string jemallocPrefix;  // "", "je_" or "_rjem_" when kind == Jemalloc
  // Allocators whose symbols are present but which do not serve malloc.
  std::vector<std::pair<std::string, std::string>> inactive;  // (name, library)
};

const Detection& DetectAllocator();

void InitDetect(Napi::Env env, Napi::Object exports);

}  // namespace allocstats
