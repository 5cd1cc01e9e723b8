// Per-environment state (one per main thread or worker thread that loads the addon).
#pragma once

#include <napi.h>

#include <memory>

#include "procfs.h"

namespace allocstats {

struct GlibcState;
struct JemallocState;
struct MimallocState;

struct AddonData {
  std::shared_ptr<ProcFiles> files = std::make_shared<ProcFiles>();
  // shared_ptr: threadpool work keeps the state alive even if its environment is torn
  // down while the work is still running.
  std::shared_ptr<GlibcState> glibc;
  std::shared_ptr<JemallocState> jemalloc;  // MIB cache and epoch age
  std::shared_ptr<MimallocState> mimalloc;  // this thread's collect hook, when registered
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace allocstats
