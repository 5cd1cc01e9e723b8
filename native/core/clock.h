// Monotonic time for measuring what a call cost.
#pragma once

#include <chrono>

namespace allocstats {

inline double NowNs() {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace allocstats
