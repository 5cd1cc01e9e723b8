#include "tcmalloc.h"

#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "detect.h"
#include "procfs.h"

namespace allocstats {

namespace {

struct TcmallocApi {
  int (*getNumeric)(const char*, size_t*) = nullptr;
  int (*setNumeric)(const char*, size_t) = nullptr;
  void (*releaseFreeMemory)() = nullptr;
  // The release rate has no C entry point in gperftools; the implementation's member
  // functions are exported and read no member data, so they are called with the
  // registered MallocExtension instance as `this`.
  void* (*instance)() = nullptr;
  void (*setReleaseRate)(void*, double) = nullptr;
  double (*getReleaseRate)(void*) = nullptr;
};

// Resolved once per process, only when tcmalloc serves malloc.
const TcmallocApi& Api() {
  static const TcmallocApi api = [] {
    TcmallocApi a;
    if (DetectAllocator().kind != AllocatorKind::Tcmalloc) return a;
    a.getNumeric = reinterpret_cast<int (*)(const char*, size_t*)>(dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
    a.setNumeric = reinterpret_cast<int (*)(const char*, size_t)>(dlsym(RTLD_DEFAULT, "MallocExtension_SetNumericProperty"));
    a.releaseFreeMemory = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"));
    a.instance = reinterpret_cast<void* (*)()>(dlsym(RTLD_DEFAULT, "_ZN15MallocExtension8instanceEv"));
    a.setReleaseRate =
        reinterpret_cast<void (*)(void*, double)>(dlsym(RTLD_DEFAULT, "_ZN22TCMallocImplementation20SetMemoryReleaseRateEd"));
    a.getReleaseRate =
        reinterpret_cast<double (*)(void*)>(dlsym(RTLD_DEFAULT, "_ZN22TCMallocImplementation20GetMemoryReleaseRateEv"));
    if (a.instance == nullptr) a.setReleaseRate = nullptr, a.getReleaseRate = nullptr;
    return a;
  }();
  return api;
}

struct Context {
  std::shared_ptr<ProcFiles> files;
  std::vector<std::string> names;
};

struct Sample {
  bool serving = false;
  ProcessMemory process;
  std::vector<double> values;  // -1: property unknown to this tcmalloc
  double costNs = 0;
};

Sample TakeSample(const Context& ctx) {
  Sample out;
  double start = NowNs();
  ReadProcessMemory(ctx.files.get(), out.process);
  const TcmallocApi& api = Api();
  out.serving = api.getNumeric != nullptr;
  out.values.assign(ctx.names.size(), -1);
  if (out.serving) {
    for (size_t i = 0; i < ctx.names.size(); i++) {
      size_t v = 0;
      if (api.getNumeric(ctx.names[i].c_str(), &v)) out.values[i] = static_cast<double>(v);
    }
  }
  out.costNs = NowNs() - start;
  return out;
}

struct TrimOutcome {
  Sample before, after;
  double durationNs = 0;
  double rssBefore = -1, rssAfter = -1;
};

TrimOutcome TakeTrim(const Context& ctx) {
  static std::mutex trimming;  // one trim at a time in the whole process
  std::lock_guard<std::mutex> lock(trimming);
  TrimOutcome outcome;
  outcome.before = TakeSample(ctx);
  ProcessMemory before, after;
  ReadProcessMemory(ctx.files.get(), before);
  double start = NowNs();
  Api().releaseFreeMemory();
  outcome.durationNs = NowNs() - start;
  ReadProcessMemory(ctx.files.get(), after);
  outcome.rssBefore = before.rss;
  outcome.rssAfter = after.rss;
  outcome.after = TakeSample(ctx);
  return outcome;
}

Napi::Value SampleToJs(Napi::Env env, const Context& ctx, const Sample& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("serving", s.serving);
  o.Set("process", ProcessMemoryToJs(env, s.process));
  Napi::Object properties = Napi::Object::New(env);
  for (size_t i = 0; i < ctx.names.size(); i++) properties.Set(ctx.names[i], SizeOrNull(env, s.values[i]));
  o.Set("properties", properties);
  o.Set("costNs", s.costNs);
  return o;
}

Napi::Value TrimToJs(Napi::Env env, const Context& ctx, const TrimOutcome& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("durationNs", t.durationNs);
  o.Set("rssBefore", SizeOrNull(env, t.rssBefore));
  o.Set("rssAfter", SizeOrNull(env, t.rssAfter));
  o.Set("before", SampleToJs(env, ctx, t.before));
  o.Set("after", SampleToJs(env, ctx, t.after));
  return o;
}

// Property names come from TypeScript; checked here only so that a bad call cannot crash.
Context MakeContext(const Napi::CallbackInfo& info) {
  Context ctx{Data(info.Env()).files, {}};
  if (info.Length() < 1 || !info[0].IsArray()) throw CodedError(info.Env(), "ERR_INVALID_ARG_TYPE", "names must be an array");
  Napi::Array names = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value name = names.Get(i);
    if (!name.IsString()) throw CodedError(info.Env(), "ERR_INVALID_ARG_TYPE", "names must be strings");
    ctx.names.push_back(name.As<Napi::String>().Utf8Value());
  }
  return ctx;
}

void RequireTcmalloc(Napi::Env env) {
  if (Api().getNumeric == nullptr || Api().releaseFreeMemory == nullptr) {
    throw CodedError(env, "ERR_ALLOCATOR_UNSUPPORTED", "tcmalloc does not serve malloc() in this process");
  }
}

Napi::Value SampleSyncJs(const Napi::CallbackInfo& info) {
  Context ctx = MakeContext(info);
  return SampleToJs(info.Env(), ctx, TakeSample(ctx));
}

Napi::Value SampleAsyncJs(const Napi::CallbackInfo& info) {
  Context ctx = MakeContext(info);
  return PromiseWorker<Sample>::Run(
      info.Env(), "allocatorStats.tcmallocSample", [ctx](Failure&) { return TakeSample(ctx); },
      [ctx](Napi::Env env, Sample& s) { return SampleToJs(env, ctx, s); });
}

Napi::Value TrimSyncJs(const Napi::CallbackInfo& info) {
  RequireTcmalloc(info.Env());
  Context ctx = MakeContext(info);
  return TrimToJs(info.Env(), ctx, TakeTrim(ctx));
}

Napi::Value TrimAsyncJs(const Napi::CallbackInfo& info) {
  RequireTcmalloc(info.Env());
  Context ctx = MakeContext(info);
  return PromiseWorker<TrimOutcome>::Run(
      info.Env(), "allocatorStats.tcmallocTrim", [ctx](Failure&) { return TakeTrim(ctx); },
      [ctx](Napi::Env env, TrimOutcome& t) { return TrimToJs(env, ctx, t); });
}

Napi::Value SetPropertyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireTcmalloc(env);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    throw CodedError(env, "ERR_INVALID_ARG_TYPE", "setProperty(name, value) takes a string and a number");
  }
  double value = info[1].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= 9007199254740991.0) || std::floor(value) != value) {
    throw CodedError(env, "ERR_OUT_OF_RANGE", "value out of range");
  }
  if (Api().setNumeric == nullptr) return Napi::Boolean::New(env, false);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Boolean::New(env, Api().setNumeric(name.c_str(), static_cast<size_t>(value)) != 0);
}

// Returns the rate in effect (after setting it when a number is given), or null if this
// tcmalloc does not export the release-rate functions.
Napi::Value ReleaseRateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireTcmalloc(env);
  const TcmallocApi& api = Api();
  if (api.getReleaseRate == nullptr || api.setReleaseRate == nullptr) return env.Null();
  void* self = api.instance();
  if (self == nullptr) return env.Null();
  if (info.Length() > 0 && info[0].IsNumber()) {
    double rate = info[0].As<Napi::Number>().DoubleValue();
    if (!(rate >= 0 && rate <= 1e6)) throw CodedError(env, "ERR_OUT_OF_RANGE", "release rate out of range");
    api.setReleaseRate(self, rate);
  }
  return Napi::Number::New(env, api.getReleaseRate(self));
}

}  // namespace

void InitTcmalloc(Napi::Env env, Napi::Object exports) {
  exports.Set("tcmallocSampleSync", Napi::Function::New(env, SampleSyncJs, "tcmallocSampleSync"));
  exports.Set("tcmallocSample", Napi::Function::New(env, SampleAsyncJs, "tcmallocSample"));
  exports.Set("tcmallocTrimSync", Napi::Function::New(env, TrimSyncJs, "tcmallocTrimSync"));
  exports.Set("tcmallocTrim", Napi::Function::New(env, TrimAsyncJs, "tcmallocTrim"));
  exports.Set("tcmallocSetProperty", Napi::Function::New(env, SetPropertyJs, "tcmallocSetProperty"));
  exports.Set("tcmallocReleaseRate", Napi::Function::New(env, ReleaseRateJs, "tcmallocReleaseRate"));
}

}  // namespace allocstats
