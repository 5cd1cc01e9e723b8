// The core's Environment for one Node environment (the main thread or a worker): tasks on its
// JS thread through a thread-safe function, teardown through an environment cleanup hook.
#pragma once

#include <napi.h>

#include "core/environment.h"

namespace allocstats {

class NodeEnvironment final : public Environment {
 public:
  explicit NodeEnvironment(Napi::Env env) : env_(env) {}
  std::shared_ptr<ThreadTasks> NewThreadTasks(const char* resource) override;
  bool OnTeardown(std::function<void()> hook) override;

 private:
  Napi::Env env_;
};

}  // namespace allocstats
