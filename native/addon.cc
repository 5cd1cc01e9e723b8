// Module initialisation only: detection, process reads, and the backend table register
// their own functions.
#include <napi.h>

#include "addon.h"
#include "backend.h"
#include "detect.h"
#include "procfs.h"

namespace allocstats {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Freed by node-addon-api's instance-data finalizer when the environment is torn down.
  env.SetInstanceData<AddonData>(new AddonData());
  InitDetect(env, exports);
  InitProcfs(env, exports);
  InitBackends(env, exports);
  return exports;
}

}  // namespace allocstats

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return allocstats::Init(env, exports); }

NODE_API_MODULE(allocator_stats, InitModule)
