#include "node/node-environment.h"

#include <node_api.h>

#include <mutex>

namespace allocstats {

namespace {

using Task = std::function<void()>;

// env is null when the environment is being torn down: the queue is emptied then, and each
// task still runs, on the thread that tears it down.
void RunTask(napi_env, napi_value, void*, void* data) {
  auto* task = static_cast<Task*>(data);
  (*task)();
  delete task;
}

class TsfnTasks final : public ThreadTasks {
 public:
  explicit TsfnTasks(napi_threadsafe_function tsfn) : tsfn_(tsfn) {}
  // The last owner gone without Close(): the function is released all the same.
  ~TsfnTasks() override { Close(); }

  bool Post(Task task) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (tsfn_ == nullptr) return false;
    auto* data = new Task(std::move(task));
    if (napi_call_threadsafe_function(tsfn_, data, napi_tsfn_nonblocking) == napi_ok) return true;
    delete data;
    return false;
  }

  void Close() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (tsfn_ == nullptr) return;
    // Abort: no new calls are queued; pending ones are answered with env == null.
    napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
    tsfn_ = nullptr;
  }

 private:
  std::mutex mutex_;
  napi_threadsafe_function tsfn_;
};

void RunHook(void* data) {
  auto* hook = static_cast<Task*>(data);
  (*hook)();
  delete hook;
}

}  // namespace

std::shared_ptr<ThreadTasks> NodeEnvironment::NewThreadTasks(const char* resource) {
  napi_value name;
  if (napi_create_string_utf8(env_, resource, NAPI_AUTO_LENGTH, &name) != napi_ok) return nullptr;
  napi_threadsafe_function tsfn = nullptr;
  if (napi_create_threadsafe_function(env_, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr, RunTask, &tsfn) !=
      napi_ok) {
    return nullptr;
  }
  // Never keeps the event loop (process or worker) alive.
  napi_unref_threadsafe_function(env_, tsfn);
  return std::make_shared<TsfnTasks>(tsfn);
}

bool NodeEnvironment::OnTeardown(std::function<void()> hook) {
  auto* data = new Task(std::move(hook));
  if (napi_add_env_cleanup_hook(env_, RunHook, data) == napi_ok) return true;
  delete data;
  return false;
}

}  // namespace allocstats
