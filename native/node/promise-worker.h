// Promise-returning work on the libuv threadpool.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <utility>

#include "core/error.h"
#include "node/errors.h"

namespace allocstats {

// Runs `work` on the libuv threadpool and settles a Promise with `convert(result)`.
// `work` must not touch N-API; inputs are captured by value on the JS thread. A CodedError it
// throws rejects the Promise with that code.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Convert = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise Run(Napi::Env env, const char* resource, Work work, Convert convert) {
    auto* worker = new PromiseWorker(env, resource, std::move(work), std::move(convert));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    try {
      result_ = work_();
    } catch (const CodedError& error) {
      code_ = error.code();
      kind_ = error.kind();
      SetError(error.what());
    }
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
      deferred_.Reject(JsError(Env(), code_, error.Message(), kind_).Value());
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
  const char* code_ = "ERR_NATIVE";
  CodedError::Kind kind_ = CodedError::Kind::Error;
  Result result_{};
};

}  // namespace allocstats
