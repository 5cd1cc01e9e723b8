// Per-environment state (one per main thread or worker thread that loads the addon).
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "procfs.h"

namespace allocstats {

struct BackendState;

struct AddonData {
  std::shared_ptr<ProcFiles> files = std::make_shared<ProcFiles>();
  // One per entry of the backend table (null for a backend without state). shared_ptr:
  // threadpool work keeps a state alive even if its environment is torn down meanwhile.
  std::vector<std::shared_ptr<BackendState>> states;
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace allocstats
