// What a backend may ask of the environment (a JS thread with its event loop) that loads it,
// without knowing how that environment runs: the Node layer implements it with thread-safe
// functions and cleanup hooks.
#pragma once

#include <functional>
#include <memory>

namespace allocstats {

// Runs tasks on one environment's thread, posted from any thread. Never keeps that thread's
// event loop alive.
class ThreadTasks {
 public:
  virtual ~ThreadTasks() = default;
  // Queues `task` without blocking; false when it cannot be queued (the queue is closed). A
  // task still queued when Close() is called runs anyway, on whichever thread closes it.
  virtual bool Post(std::function<void()> task) = 0;
  // No task is queued after this; call it before the environment is gone.
  virtual void Close() = 0;
};

class Environment {
 public:
  virtual ~Environment() = default;
  // Null when the environment cannot make one (it is being torn down).
  virtual std::shared_ptr<ThreadTasks> NewThreadTasks(const char* resource) = 0;
  // Runs `hook` on the environment's thread when it is torn down; false (and `hook` dropped)
  // when the environment cannot promise that.
  virtual bool OnTeardown(std::function<void()> hook) = 0;
};

}  // namespace allocstats
