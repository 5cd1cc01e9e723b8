// jemalloc through its mallctl() interface, resolved with dlsym under the symbol prefix
// detection found ("", "je_" or "_rjem_"); never linked.
#pragma once

#include <napi.h>

namespace allocstats {

struct JemallocState;

}  // namespace allocstats
