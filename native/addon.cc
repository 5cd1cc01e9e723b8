// Module initialisation only: detection, process reads, and the backend table register
// their own functions.
#include <napi.h>

#include <exception>

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

// A worker terminated while it loads the addon (or a process exiting) can no longer run JS:
// Init's calls fail, and rethrowing that failure as a JS exception fails too. Such an
// environment has nobody left to tell, so the load gives up quietly instead of aborting the
// process with an uncaught C++ exception.
static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  try {
    return allocstats::Init(env, exports);
  } catch (const Napi::Error& error) {
    try {
      error.ThrowAsJavaScriptException();
    } catch (...) {
    }
  } catch (const std::exception& error) {
    try {
      Napi::Error::New(env, error.what()).ThrowAsJavaScriptException();
    } catch (...) {
    }
  }
  return Napi::Object();
}

NODE_API_MODULE(allocator_stats, InitModule)
