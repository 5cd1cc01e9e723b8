#include "mimalloc.h"

#include <dlfcn.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "detect.h"
#include "procfs.h"

namespace allocstats {

namespace {

using OutputFn = void (*)(const char*, void*);

struct MimallocApi {
  int (*version)() = nullptr;
  void (*processInfo)(size_t*, size_t*, size_t*, size_t*, size_t*, size_t*, size_t*, size_t*) = nullptr;
  void (*collect)(bool) = nullptr;
  long (*optionGet)(int) = nullptr;
  void (*optionSet)(int, long) = nullptr;
  void (*statsPrintOut)(OutputFn, void*) = nullptr;
};

// The symbols, whether or not mimalloc serves malloc (the per-thread hooks below are set up
// before detection runs); `serving` says whether it does.
const MimallocApi& Symbols() {
  static const MimallocApi api = [] {
    MimallocApi a;
    a.version = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "mi_version"));
    a.processInfo = reinterpret_cast<decltype(a.processInfo)>(dlsym(RTLD_DEFAULT, "mi_process_info"));
    a.collect = reinterpret_cast<void (*)(bool)>(dlsym(RTLD_DEFAULT, "mi_collect"));
    a.optionGet = reinterpret_cast<long (*)(int)>(dlsym(RTLD_DEFAULT, "mi_option_get"));
    a.optionSet = reinterpret_cast<void (*)(int, long)>(dlsym(RTLD_DEFAULT, "mi_option_set"));
    a.statsPrintOut = reinterpret_cast<void (*)(OutputFn, void*)>(dlsym(RTLD_DEFAULT, "mi_stats_print_out"));
    return a;
  }();
  return api;
}

bool Serving() { return DetectAllocator().kind == AllocatorKind::Mimalloc && Symbols().collect != nullptr; }

// mimalloc's heaps belong to threads: mi_collect(true) returns only the calling thread's
// free pages (plus abandoned ones on the main thread). Each JS thread that loads the addon
// registers a thread-safe function here, so a trim can ask every one of them to collect on
// its own thread. The registry is process-wide by nature: it spans environments.
struct Round {
  std::mutex mutex;
  std::condition_variable done;
  int answered = 0;
};

struct Registration {
  uint64_t id;
  napi_threadsafe_function tsfn;
};

struct Registry {
  std::mutex mutex;
  std::vector<Registration> entries;
  uint64_t nextId = 1;
};

Registry& TheRegistry() {
  // Never destroyed: cleanup hooks of late environments may still run during exit.
  static Registry* registry = new Registry();
  return *registry;
}

void CollectOnThisThread(napi_env env, napi_value, void*, void* data) {
  // env is null when the environment is being torn down: collecting is still harmless.
  if (Symbols().collect != nullptr) Symbols().collect(true);
  auto* round = static_cast<std::shared_ptr<Round>*>(data);
  {
    std::lock_guard<std::mutex> lock((*round)->mutex);
    (*round)->answered++;
  }
  (*round)->done.notify_all();
  delete round;
}

}  // namespace

struct MimallocState {
  uint64_t id = 0;  // 0: this environment is not registered
  napi_threadsafe_function tsfn = nullptr;
};

namespace {

void Unregister(void* arg) {
  auto* state = static_cast<MimallocState*>(arg);
  Registry& r = TheRegistry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (auto it = r.entries.begin(); it != r.entries.end(); ++it) {
      if (it->id == state->id) {
        r.entries.erase(it);
        break;
      }
    }
  }
  // Abort: no new calls are queued; pending ones are answered with env == null.
  napi_release_threadsafe_function(state->tsfn, napi_tsfn_abort);
  state->id = 0;
  state->tsfn = nullptr;
}

void Register(Napi::Env env, MimallocState& state) {
  napi_value name;
  napi_create_string_utf8(env, "allocatorStats.mimallocCollect", NAPI_AUTO_LENGTH, &name);
  napi_threadsafe_function tsfn = nullptr;
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr, CollectOnThisThread,
                                      &tsfn) != napi_ok) {
    return;
  }
  // Never keeps the event loop (process or worker) alive.
  napi_unref_threadsafe_function(env, tsfn);
  Registry& r = TheRegistry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    state.id = r.nextId++;
    state.tsfn = tsfn;
    r.entries.push_back({state.id, tsfn});
  }
  napi_add_env_cleanup_hook(env, Unregister, &state);
}

struct Sample {
  bool serving = false;
  ProcessMemory process;
  bool processInfo = false;
  size_t elapsedMs = 0, userMs = 0, systemMs = 0, currentRss = 0, peakRss = 0, currentCommit = 0, peakCommit = 0,
         pageFaults = 0;
  double costNs = 0;
};

Sample TakeSample(const std::shared_ptr<ProcFiles>& files) {
  Sample out;
  double start = NowNs();
  ReadProcessMemory(files.get(), out.process);
  out.serving = Serving();
  if (out.serving && Symbols().processInfo != nullptr) {
    Symbols().processInfo(&out.elapsedMs, &out.userMs, &out.systemMs, &out.currentRss, &out.peakRss, &out.currentCommit,
                          &out.peakCommit, &out.pageFaults);
    out.processInfo = true;
  }
  out.costNs = NowNs() - start;
  return out;
}

struct TrimOutcome {
  Sample before, after;
  double durationNs = 0;
  double rssBefore = -1, rssAfter = -1;
  int threads = 0;      // registered JS threads asked to collect (other than this one)
  int answered = 0;     // of those, how many collected within the time limit
  int unreachable = 0;  // registered but already closing
};

// delayOption: index of mimalloc's decommit (purge) delay option, or -1. A page freed while the
// delay is non-zero is only marked for decommit, and a live thread's segments apply such
// marks only when that thread allocates from them again, which an idle thread never does;
// with the delay at 0 for the duration of the collects, the spans they free (coalesced with
// free neighbours) are decommitted at once.
TrimOutcome TakeTrim(const std::shared_ptr<ProcFiles>& files, uint64_t selfId, double timeoutMs, int delayOption) {
  static std::mutex trimming;  // one trim at a time in the whole process
  std::lock_guard<std::mutex> lock(trimming);
  TrimOutcome outcome;
  outcome.before = TakeSample(files);
  ProcessMemory before, after;
  ReadProcessMemory(files.get(), before);
  double start = NowNs();
  const MimallocApi& api = Symbols();
  bool restoreDelay = delayOption >= 0 && api.optionGet != nullptr && api.optionSet != nullptr;
  long savedDelay = restoreDelay ? api.optionGet(delayOption) : 0;
  if (restoreDelay) api.optionSet(delayOption, 0);
  auto round = std::make_shared<Round>();
  {
    Registry& r = TheRegistry();
    std::lock_guard<std::mutex> registryLock(r.mutex);
    for (const Registration& e : r.entries) {
      if (e.id == selfId) continue;  // this thread is blocked in this call: it collects below
      auto* data = new std::shared_ptr<Round>(round);
      if (napi_call_threadsafe_function(e.tsfn, data, napi_tsfn_nonblocking) == napi_ok) {
        outcome.threads++;
      } else {
        delete data;
        outcome.unreachable++;
      }
    }
  }
  // The calling thread (the JS thread for a sync trim, a threadpool thread otherwise).
  Symbols().collect(true);
  {
    std::unique_lock<std::mutex> wait(round->mutex);
    round->done.wait_for(wait, std::chrono::duration<double, std::milli>(timeoutMs),
                         [&] { return round->answered >= outcome.threads; });
    outcome.answered = round->answered;
  }
  if (restoreDelay) api.optionSet(delayOption, savedDelay);
  outcome.durationNs = NowNs() - start;
  ReadProcessMemory(files.get(), after);
  outcome.rssBefore = before.rss;
  outcome.rssAfter = after.rss;
  outcome.after = TakeSample(files);
  return outcome;
}

Napi::Value SampleToJs(Napi::Env env, const Sample& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("serving", s.serving);
  o.Set("process", ProcessMemoryToJs(env, s.process));
  if (s.processInfo) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("elapsedMs", static_cast<double>(s.elapsedMs));
    p.Set("userMs", static_cast<double>(s.userMs));
    p.Set("systemMs", static_cast<double>(s.systemMs));
    p.Set("currentRss", static_cast<double>(s.currentRss));
    p.Set("peakRss", static_cast<double>(s.peakRss));
    p.Set("currentCommit", static_cast<double>(s.currentCommit));
    p.Set("peakCommit", static_cast<double>(s.peakCommit));
    p.Set("pageFaults", static_cast<double>(s.pageFaults));
    o.Set("processInfo", p);
  } else {
    o.Set("processInfo", env.Null());
  }
  o.Set("costNs", s.costNs);
  return o;
}

Napi::Value TrimToJs(Napi::Env env, const TrimOutcome& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("durationNs", t.durationNs);
  o.Set("rssBefore", SizeOrNull(env, t.rssBefore));
  o.Set("rssAfter", SizeOrNull(env, t.rssAfter));
  o.Set("threads", t.threads);
  o.Set("answered", t.answered);
  o.Set("unreachable", t.unreachable);
  o.Set("before", SampleToJs(env, t.before));
  o.Set("after", SampleToJs(env, t.after));
  return o;
}

void RequireMimalloc(Napi::Env env) {
  if (!Serving()) throw CodedError(env, "ERR_ALLOCATOR_UNSUPPORTED", "mimalloc does not serve malloc() in this process");
}

int DelayOptionArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[1].IsNumber()) return -1;
  int option = info[1].As<Napi::Number>().Int32Value();
  return option >= 0 && option < 64 ? option : -1;
}

double TimeoutArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw CodedError(info.Env(), "ERR_INVALID_ARG_TYPE", "timeout must be a number");
  double ms = info[0].As<Napi::Number>().DoubleValue();
  if (!(ms >= 0 && ms <= 600000)) throw CodedError(info.Env(), "ERR_OUT_OF_RANGE", "timeout out of range");
  return ms;
}

uint64_t SelfId(Napi::Env env) {
  AddonData& data = Data(env);
  return data.mimalloc ? data.mimalloc->id : 0;
}

Napi::Value SampleSyncJs(const Napi::CallbackInfo& info) { return SampleToJs(info.Env(), TakeSample(Data(info.Env()).files)); }

Napi::Value SampleAsyncJs(const Napi::CallbackInfo& info) {
  auto files = Data(info.Env()).files;
  return PromiseWorker<Sample>::Run(
      info.Env(), "allocatorStats.mimallocSample", [files](Failure&) { return TakeSample(files); },
      [](Napi::Env env, Sample& s) { return SampleToJs(env, s); });
}

Napi::Value TrimSyncJs(const Napi::CallbackInfo& info) {
  RequireMimalloc(info.Env());
  double timeout = TimeoutArg(info);
  int delayOption = DelayOptionArg(info);
  return TrimToJs(info.Env(), TakeTrim(Data(info.Env()).files, SelfId(info.Env()), timeout, delayOption));
}

Napi::Value TrimAsyncJs(const Napi::CallbackInfo& info) {
  RequireMimalloc(info.Env());
  double timeout = TimeoutArg(info);
  int delayOption = DelayOptionArg(info);
  auto files = Data(info.Env()).files;
  // Runs on the threadpool: this environment's JS thread is free to answer its own hook.
  return PromiseWorker<TrimOutcome>::Run(
      info.Env(), "allocatorStats.mimallocTrim", [files, timeout, delayOption](Failure&) { return TakeTrim(files, 0, timeout, delayOption); },
      [](Napi::Env env, TrimOutcome& t) { return TrimToJs(env, t); });
}

Napi::Value InfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("serving", Serving());
  o.Set("version", Symbols().version != nullptr ? Napi::Number::New(env, Symbols().version()) : env.Null());
  size_t registered = 0;
  {
    Registry& r = TheRegistry();
    std::lock_guard<std::mutex> lock(r.mutex);
    registered = r.entries.size();
  }
  o.Set("registeredThreads", static_cast<double>(registered));
  return o;
}

Napi::Value OptionGetJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireMimalloc(env);
  if (info.Length() < 1 || !info[0].IsNumber()) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "option must be a number");
  if (Symbols().optionGet == nullptr) return env.Null();
  return Napi::Number::New(env, static_cast<double>(Symbols().optionGet(info[0].As<Napi::Number>().Int32Value())));
}

Napi::Value OptionSetJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireMimalloc(env);
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw CodedError(env, "ERR_INVALID_ARG_TYPE", "optionSet(option, value) takes two numbers");
  }
  if (Symbols().optionSet == nullptr) return Napi::Boolean::New(env, false);
  Symbols().optionSet(info[0].As<Napi::Number>().Int32Value(), static_cast<long>(info[1].As<Napi::Number>().Int64Value()));
  return Napi::Boolean::New(env, true);
}

void AppendText(const char* message, void* arg) { static_cast<std::string*>(arg)->append(message); }

// mimalloc's own statistics text; what it counts depends on how it was built (MI_STAT).
Napi::Value StatsTextJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireMimalloc(env);
  if (Symbols().statsPrintOut == nullptr) return env.Null();
  std::string text;
  Symbols().statsPrintOut(AppendText, &text);
  return Napi::String::New(env, text);
}

}  // namespace

void InitMimalloc(Napi::Env env, Napi::Object exports) {
  // Cheap symbol check only (no detection at load time): the hook is needed on every thread
  // that may hold mimalloc memory, and costs nothing until a trim calls it.
  if (Symbols().collect != nullptr) {
    AddonData& data = Data(env);
    data.mimalloc = std::make_shared<MimallocState>();
    Register(env, *data.mimalloc);
  }
  exports.Set("mimallocInfo", Napi::Function::New(env, InfoJs, "mimallocInfo"));
  exports.Set("mimallocSampleSync", Napi::Function::New(env, SampleSyncJs, "mimallocSampleSync"));
  exports.Set("mimallocSample", Napi::Function::New(env, SampleAsyncJs, "mimallocSample"));
  exports.Set("mimallocTrimSync", Napi::Function::New(env, TrimSyncJs, "mimallocTrimSync"));
  exports.Set("mimallocTrim", Napi::Function::New(env, TrimAsyncJs, "mimallocTrim"));
  exports.Set("mimallocOptionGet", Napi::Function::New(env, OptionGetJs, "mimallocOptionGet"));
  exports.Set("mimallocOptionSet", Napi::Function::New(env, OptionSetJs, "mimallocOptionSet"));
  exports.Set("mimallocStatsText", Napi::Function::New(env, StatsTextJs, "mimallocStatsText"));
}

}  // namespace allocstats
