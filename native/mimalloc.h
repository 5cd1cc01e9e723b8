// mimalloc through its exported API (mi_*), resolved with dlsym; never linked.
#pragma once

#include <napi.h>

namespace allocstats {

struct MimallocState;

}  // namespace allocstats
