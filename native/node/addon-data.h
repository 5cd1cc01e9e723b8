// Per-environment state (one per main thread or worker thread that loads the addon).
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "core/backend.h"
#include "core/procfs.h"

namespace allocstats {

struct AddonData {
  std::shared_ptr<ProcFiles> files = std::make_shared<ProcFiles>();
  // One per entry of the backend table (null for a backend without state). shared_ptr:
  // threadpool work keeps a state alive even if its environment is torn down meanwhile.
  std::vector<std::shared_ptr<BackendState>> states;
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// The entry points: detection and the process's memory; each backend's extras; sample and trim
// (each a sync/async pair) with every record's field names.
void InitProcessCalls(Napi::Env env, Napi::Object exports);
void InitExtras(Napi::Env env, Napi::Object exports, const Backend& backend, size_t index);
void InitSampleTrim(Napi::Env env, Napi::Object exports);

}  // namespace allocstats
