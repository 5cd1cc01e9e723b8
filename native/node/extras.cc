// A backend's extras, from its descriptor table: each becomes a JS function of the same name
// (and a Pair also `nameSync`), its arguments checked and converted once, here.
#include <napi.h>

#include <memory>

#include "core/backend.h"
#include "node/addon-data.h"
#include "node/errors.h"
#include "node/promise-worker.h"
#include "node/values.h"

namespace allocstats {

namespace {

// On the JS thread: the precondition, then the arguments, then the call's inputs by value.
ExtraCall Prepare(const Napi::CallbackInfo& info, const Extra& extra, size_t index) {
  if (extra.require) extra.require();
  AddonData& data = Data(info.Env());
  return ExtraCall{ArgsFromJs(info, extra.params), index < data.states.size() ? data.states[index] : nullptr, data.files};
}

Napi::Function SyncFunction(Napi::Env env, std::shared_ptr<const Extra> extra, size_t index, const std::string& name) {
  return Napi::Function::New(
      env,
      [extra, index](const Napi::CallbackInfo& info) -> Napi::Value {
        return Guarded(info.Env(), [&] { return ToJs(info.Env(), extra->run(Prepare(info, *extra, index))); });
      },
      name);
}

Napi::Function AsyncFunction(Napi::Env env, std::shared_ptr<const Extra> extra, size_t index) {
  const std::string resource = "allocatorStats." + extra->name;
  return Napi::Function::New(
      env,
      [extra, index, resource](const Napi::CallbackInfo& info) -> Napi::Value {
        return Guarded(info.Env(), [&] {
          ExtraCall call = Prepare(info, *extra, index);
          return PromiseWorker<Value>::Run(
              info.Env(), resource.c_str(), [extra, call] { return extra->run(call); },
              [](Napi::Env e, Value& v) { return ToJs(e, v); });
        });
      },
      extra->name);
}

}  // namespace

void InitExtras(Napi::Env env, Napi::Object exports, const Backend& backend, size_t index) {
  for (Extra& descriptor : backend.MakeExtras()) {
    auto extra = std::make_shared<const Extra>(std::move(descriptor));
    switch (extra->kind) {
      case Extra::Kind::Constant:
        exports.Set(extra->name, ToJs(env, extra->constant));
        break;
      case Extra::Kind::Sync:
        exports.Set(extra->name, SyncFunction(env, extra, index, extra->name));
        break;
      case Extra::Kind::Pair:
        exports.Set(extra->name + "Sync", SyncFunction(env, extra, index, extra->name + "Sync"));
        exports.Set(extra->name, AsyncFunction(env, extra, index));
        break;
    }
  }
}

}  // namespace allocstats
