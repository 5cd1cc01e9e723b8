// gperftools tcmalloc through its C API (MallocExtension_*), resolved with dlsym; never linked.
#pragma once

#include <napi.h>

namespace allocstats {

}  // namespace allocstats
