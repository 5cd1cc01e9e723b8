// The one reader of /proc/self/maps: each mapping's range, permissions and what backs it.
#pragma once

#include <cstdint>
#include <vector>

namespace allocstats {

struct Mapping {
  uintptr_t start = 0, end = 0;
  bool readWrite = false;
  bool anonymous = false;  // no file and no name
  bool heap = false;       // [heap]: the program break's area
};

// In address order, as the kernel lists them. False (and `out` empty) when unreadable.
bool ReadMappings(std::vector<Mapping>& out);

}  // namespace allocstats
