// Module initialisation only: each concern registers its own functions.
#include <napi.h>

#include "addon.h"
#include "detect.h"
#include "glibc.h"
#include "jemalloc.h"
#include "mimalloc.h"
#include "procfs.h"
#include "tcmalloc.h"

namespace allocstats {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Freed by node-addon-api's instance-data finalizer when the environment is torn down.
  env.SetInstanceData<AddonData>(new AddonData());
  InitDetect(env, exports);
  InitProcfs(env, exports);
  InitGlibc(env, exports);
  InitJemalloc(env, exports);
  InitTcmalloc(env, exports);
  InitMimalloc(env, exports);
  return exports;
}

}  // namespace allocstats

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return allocstats::Init(env, exports); }

NODE_API_MODULE(allocator_stats, InitModule)
