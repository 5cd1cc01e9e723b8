// Shared helpers for the native layer: coded errors and Promise-returning workers.
#pragma once

#include <napi.h>

#include <chrono>
#include <functional>
#include <string>
#include <utility>

namespace allocstats {

// Every error created here carries a stable `code` property.
inline Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// Set by work running on the threadpool when it fails; turned into a coded rejection.
struct Failure {
  std::string code;
  std::string message;
  void Set(const char* c, std::string m) {
    code = c;
    message = std::move(m);
  }
  bool failed() const { return !code.empty(); }
};

// Runs `work` on the libuv threadpool and settles a Promise with `convert(result)`.
// `work` must not touch N-API; inputs are captured by value on the JS thread.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result(Failure&)>;
  using Convert = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise Run(Napi::Env env, const char* resource, Work work, Convert convert) {
    auto* worker = new PromiseWorker(env, resource, std::move(work), std::move(convert));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    result_ = work_(failure_);
    if (failure_.failed()) SetError(failure_.message);
  }

  // A worker thread may be torn down while this work runs: then N-API calls fail, nobody
  // awaits the Promise, and the failure must not escape as a C++ exception.
  void OnOK() override {
    try {
      deferred_.Resolve(convert_(Env(), result_));
    } catch (const Napi::Error& error) {
      try {
        deferred_.Reject(error.Value());
      } catch (...) {
      }
    } catch (...) {
    }
  }

  void OnError(const Napi::Error& error) override {
    try {
      Napi::Error coded = error;
      coded.Set("code", Napi::String::New(Env(), failure_.failed() ? failure_.code : "ERR_NATIVE"));
      deferred_.Reject(coded.Value());
    } catch (...) {
    }
  }

 private:
  PromiseWorker(Napi::Env env, const char* resource, Work work, Convert convert)
      : Napi::AsyncWorker(env, resource),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        convert_(std::move(convert)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  Convert convert_;
  Failure failure_;
  Result result_{};
};

// Monotonic time for measuring what a call cost.
inline double NowNs() {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// Sizes cross as doubles: exact up to 2^53 bytes (8 PiB). NaN (or -1) means unknown: null.
inline Napi::Value SizeOrNull(Napi::Env env, double value) {
  if (!(value >= 0)) return env.Null();
  return Napi::Number::New(env, value);
}

}  // namespace allocstats
