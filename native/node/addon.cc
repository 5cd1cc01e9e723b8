// Module initialisation only: the per-environment state, then the entry points.
#include <napi.h>

#include <exception>

#include "core/backend.h"
#include "node/addon-data.h"
#include "node/node-environment.h"

namespace allocstats {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Freed by node-addon-api's instance-data finalizer when the environment is torn down.
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  InitProcessCalls(env, exports);
  // Backends use it while they make their state (thread-safe functions, cleanup hooks), not after.
  NodeEnvironment environment(env);
  const auto& table = Backends();
  data->states.resize(table.size());
  for (size_t i = 0; i < table.size(); i++) {
    data->states[i] = table[i]->NewState(environment);
    InitExtras(env, exports, *table[i], i);
  }
  InitSampleTrim(env, exports);
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
