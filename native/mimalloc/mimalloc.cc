// mimalloc through its exported API (mi_*), resolved with dlsym; never linked.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/detect.h"
#include "core/environment.h"
#include "core/error.h"

namespace allocstats {

namespace {

using OutputFn = void (*)(const char*, void*);

// A trim's delay option index at or past this is never passed to mi_option_set (TypeScript
// passes only the decommit delay's index, or -1); mimalloc 2.0's table has about 30 options.
constexpr int kOptionSlots = 64;
// The longest wait for other threads' collects a raw call can ask for (TypeScript allows 10 min).
constexpr double kMaxWaitMs = 3'600'000;

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

bool Serving() { return DetectAllocator().backend == &MimallocBackend() && Symbols().collect != nullptr; }

// mimalloc's heaps belong to threads: mi_collect(true) returns only the calling thread's
// free pages (plus abandoned ones on the main thread). Each JS thread that loads the addon
// registers a way to run a task on it here (the environment's ThreadTasks), so a trim can ask
// every one of them to collect on its own thread. The registry is process-wide by nature: it spans environments.
struct Round {
  std::mutex mutex;
  std::condition_variable done;
  int answered = 0;  // collected on their thread
  int gone = 0;      // their thread began to exit first: it will not collect
};

// One request to one thread; settled once, by its collect or by that thread's exit.
struct Ticket {
  std::shared_ptr<Round> round;
  std::atomic<bool> settled{false};
  explicit Ticket(std::shared_ptr<Round> r) : round(std::move(r)) {}
  void Settle(bool collected) {
    if (settled.exchange(true)) return;
    {
      std::lock_guard<std::mutex> lock(round->mutex);
      (collected ? round->answered : round->gone)++;
    }
    round->done.notify_all();
  }
};

// Requests queued to one thread and not yet settled. A thread that begins to exit (its
// 'exit' event) closes its inbox and settles them: process.exit() stops worker threads
// before it tears the main thread's environment down, so a worker blocked in trimSync()
// waiting for the main thread would otherwise wait the whole collect timeout.
struct Inbox {
  std::mutex mutex;
  bool closed = false;
  std::vector<std::shared_ptr<Ticket>> pending;
};

struct Registration {
  uint64_t id;
  std::shared_ptr<ThreadTasks> tasks;
  // Set while this thread is blocked in a sync trim: it collects its own heap there and
  // cannot answer a request until it returns, so other trims do not wait for it.
  std::shared_ptr<std::atomic<bool>> trimming;
  std::shared_ptr<Inbox> inbox;
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

}  // namespace

struct MimallocState : BackendState {
  uint64_t id = 0;  // 0: this environment is not registered
  std::shared_ptr<ThreadTasks> tasks;
  std::shared_ptr<std::atomic<bool>> trimming = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
};

namespace {

// mimalloc's decommit delay is one process-wide option, while trims may overlap once they
// wait outside the trim lock: the first trim saves it and sets 0, the last one restores it.
struct DelayOverride {
  std::mutex mutex;
  int users = 0;
  long saved = 0;
};

DelayOverride& Delay() {
  static DelayOverride* delay = new DelayOverride();  // never destroyed: trims may run at exit
  return *delay;
}

void HoldDelay(int option) {
  const MimallocApi& api = Symbols();
  if (option < 0 || api.optionGet == nullptr || api.optionSet == nullptr) return;
  DelayOverride& d = Delay();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (d.users++ == 0) d.saved = api.optionGet(option), api.optionSet(option, 0);
}

void ReleaseDelay(int option) {
  const MimallocApi& api = Symbols();
  if (option < 0 || api.optionGet == nullptr || api.optionSet == nullptr) return;
  DelayOverride& d = Delay();
  std::lock_guard<std::mutex> lock(d.mutex);
  if (--d.users == 0) api.optionSet(option, d.saved);
}

}  // namespace

namespace {

void Unregister(MimallocState& state) {
  Registry& r = TheRegistry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (auto it = r.entries.begin(); it != r.entries.end(); ++it) {
      if (it->id == state.id) {
        r.entries.erase(it);
        break;
      }
    }
  }
  // No new tasks are queued; pending ones still run (and collect) as the queue closes.
  state.tasks->Close();
  state.id = 0;
  state.tasks = nullptr;
}

void Register(Environment& env, const std::shared_ptr<MimallocState>& state) {
  std::shared_ptr<ThreadTasks> tasks = env.NewThreadTasks("allocatorStats.mimallocCollect");
  if (!tasks) return;
  // The hook first: an entry nobody would remove at teardown would be posted to after its
  // thread-safe function is gone. Both run on this thread, so the hook cannot run before the
  // entry is in.
  if (!env.OnTeardown([state] { Unregister(*state); })) {
    tasks->Close();
    return;
  }
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  state->id = r.nextId++;
  state->tasks = tasks;
  r.entries.push_back({state->id, tasks, state->trimming, state->inbox});
}

#define SAMPLE_FIELDS(X)                                                                                    \
  X(processInfo) X(elapsedMs) X(userMs) X(systemMs) X(currentRss) X(peakRss) X(currentCommit) X(peakCommit) \
  X(pageFaults)
ALLOCSTATS_DECLARE_FIELDS(SampleField, SAMPLE_FIELDS);
ALLOCSTATS_DECLARE_FIELDS(NoField, ALLOCSTATS_NO_FIELDS);
// timeoutMs: how long to wait for other JS threads to collect. delayOption: index of
// mimalloc's decommit (purge) delay option, or -1. A page freed while the delay is non-zero is
// only marked for decommit, and a live thread's segments apply such marks only when that
// thread allocates from them again, which an idle thread never does; with the delay at 0 for
// the duration of the collects, the spans they free (coalesced with free neighbours) are
// decommitted at once.
#define TRIM_ARGS(X) X(timeoutMs) X(delayOption)
ALLOCSTATS_DECLARE_FIELDS(TrimArg, TRIM_ARGS);
// Other JS threads asked to collect, how many did in time, how many were already closing.
#define TRIM_FIELDS(X) X(threads) X(answered) X(unreachable)
ALLOCSTATS_DECLARE_FIELDS(TrimField, TRIM_FIELDS);

using MiVersionFn = int (*)();
using MiInHeapFn = bool (*)(const void*);

bool MimallocServes(MiInHeapFn inHeap) {
  void* p = ProbeAllocate(4096);
  bool owned = p != nullptr && inHeap(p);
  ProbeFree(p);
  return owned;
}

class Mimalloc final : public Backend {
 public:
  void Probe(Detection& d) const override {
    auto miVersion = reinterpret_cast<MiVersionFn>(dlsym(RTLD_DEFAULT, "mi_version"));
    auto miInHeap = reinterpret_cast<MiInHeapFn>(dlsym(RTLD_DEFAULT, "mi_is_in_heap_region"));
    if (miVersion == nullptr || miInHeap == nullptr) return;
    std::string library = LibraryOf(reinterpret_cast<void*>(miVersion));
    if (d.backend == nullptr && MimallocServes(miInHeap)) {
      Claim(d, "mimalloc", library, "mi_is_in_heap_region() owns a malloc() block");
      d.versionNumbers = {static_cast<double>(miVersion())};
    } else if (d.backend != this) {
      d.inactive.emplace_back("mimalloc", library);
    }
  }

  const char* Name() const override { return "mimalloc"; }
  bool Serving() const override { return allocstats::Serving(); }
  WireNames Wire() const override { return WireOf<SampleField, NoField, TrimField, TrimArg>(); }

  // Cheap symbol check only (no detection at load time): the hook is needed on every thread
  // that may hold mimalloc memory, and costs nothing until a trim calls it.
  std::shared_ptr<BackendState> NewState(Environment& env) const override {
    if (Symbols().collect == nullptr) return nullptr;
    auto state = std::make_shared<MimallocState>();
    Register(env, state);
    return state;
  }

  void Sample(const Call&, Record& out) const override {
    if (Symbols().processInfo == nullptr) return;
    size_t v[SampleField::kCount - 1] = {};
    Symbols().processInfo(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    out[SampleField::processInfo] = 1;
    for (size_t i = 1; i < SampleField::kCount; i++) out[i] = static_cast<double>(v[i - 1]);
  }

  int Trim(const Call& call, Record& out) const override {
    int result = 0;
    Wait wait = StartTrim(call, out, result);
    if (wait) wait(out);
    return result;
  }

  Wait StartTrim(const Call& call, Record& out, int& result) const override {
    result = 0;
    // A sync trim blocks this environment's JS thread: it collects here, not through its hook.
    std::shared_ptr<std::atomic<bool>> self;
    if (call.onJsThread && call.state) self = static_cast<MimallocState&>(*call.state).trimming;
    if (self) self->store(true);
    // Both were checked in TypeScript (src/allocators/mimalloc/); what remains keeps a missing
    // (NaN), infinite or huge argument from reaching a cast or a wait (a double beyond int64
    // nanoseconds is undefined behaviour there), and an index past mimalloc's option table
    // from its setter.
    double timeoutMs = call.Arg(TrimArg::timeoutMs);
    if (!(timeoutMs >= 0)) timeoutMs = 0;
    if (timeoutMs > kMaxWaitMs) timeoutMs = kMaxWaitMs;
    double delay = call.Arg(TrimArg::delayOption);
    const int delayOption = delay >= 0 && delay < kOptionSlots ? static_cast<int>(delay) : -1;
    HoldDelay(delayOption);
    int threads = 0, unreachable = 0, selfCollecting = 0;
    auto round = std::make_shared<Round>();
    {
      Registry& r = TheRegistry();
      std::lock_guard<std::mutex> registryLock(r.mutex);
      for (const Registration& e : r.entries) {
        if (e.trimming == self) continue;
        // Blocked in its own sync trim, which collects that thread's heap.
        if (e.trimming && e.trimming->load()) {
          selfCollecting++;
          continue;
        }
        auto ticket = std::make_shared<Ticket>(round);
        {
          std::lock_guard<std::mutex> inboxLock(e.inbox->mutex);
          if (e.inbox->closed) {
            unreachable++;
            continue;
          }
          auto& pending = e.inbox->pending;
          pending.erase(std::remove_if(pending.begin(), pending.end(), [](const auto& t) { return t->settled.load(); }),
                        pending.end());
          pending.push_back(ticket);
        }
        // Runs on that thread; or, when its environment is torn down first, as the queue
        // closes (collecting is still harmless then).
        auto collect = [ticket] {
          if (Symbols().collect != nullptr) Symbols().collect(true);
          ticket->Settle(true);
        };
        if (e.tasks->Post(collect)) {
          threads++;
        } else {
          ticket->settled.store(true);
          unreachable++;
        }
      }
    }
    // The calling thread (the JS thread for a sync trim, a threadpool thread otherwise).
    Symbols().collect(true);
    out[TrimField::threads] = threads + selfCollecting, out[TrimField::unreachable] = unreachable;
    return [round, threads, selfCollecting, timeoutMs, delayOption, self](Record& out) {
      int answered = 0, gone = 0;
      {
        std::unique_lock<std::mutex> wait(round->mutex);
        round->done.wait_for(wait, std::chrono::duration<double, std::milli>(timeoutMs),
                             [&] { return round->answered + round->gone >= threads; });
        answered = round->answered, gone = round->gone;
      }
      ReleaseDelay(delayOption);
      if (self) self->store(false);
      out[TrimField::answered] = answered + selfCollecting;
      // Threads that began to exit are counted as unreachable, not as asked.
      out[TrimField::threads] = out[TrimField::threads] - gone;
      out[TrimField::unreachable] = out[TrimField::unreachable] + gone;
    };
  }

  Extras MakeExtras() const override;
};

void RequireMimalloc() {
  if (!Serving()) ThrowNotServing("mimalloc");
}

Value Info(const ExtraCall&) {
  Value o = Value::Object();
  o.Set("serving", Value::Bool(Serving()));
  o.Set("version", Symbols().version != nullptr ? Value::Number(Symbols().version()) : Value::Null());
  size_t registered = 0;
  {
    Registry& r = TheRegistry();
    std::lock_guard<std::mutex> lock(r.mutex);
    registered = r.entries.size();
  }
  o.Set("registeredThreads", Value::Number(static_cast<double>(registered)));
  return o;
}

Value OptionGet(const ExtraCall& call) {
  if (Symbols().optionGet == nullptr) return Value::Null();
  return Value::Number(static_cast<double>(Symbols().optionGet(static_cast<int>(call.args[0].int64))));
}

Value OptionSet(const ExtraCall& call) {
  if (Symbols().optionSet == nullptr) return Value::Bool(false);
  Symbols().optionSet(static_cast<int>(call.args[0].int64), static_cast<long>(call.args[1].int64));
  return Value::Bool(true);
}

void AppendText(const char* message, void* arg) { static_cast<std::string*>(arg)->append(message); }

// mimalloc's own statistics text; what it counts depends on how it was built (MI_STAT).
Value StatsText(const ExtraCall&) {
  if (Symbols().statsPrintOut == nullptr) return Value::Null();
  std::string text;
  Symbols().statsPrintOut(AppendText, &text);
  return Value::String(text);
}

// Called from this thread's 'exit' event: it will not answer requests any more.
Value Closing(const ExtraCall& call) {
  if (!call.state) return Value();
  auto& state = static_cast<MimallocState&>(*call.state);
  std::vector<std::shared_ptr<Ticket>> pending;
  {
    std::lock_guard<std::mutex> lock(state.inbox->mutex);
    state.inbox->closed = true;
    pending.swap(state.inbox->pending);
  }
  for (auto& ticket : pending) ticket->Settle(false);
  return Value();
}

Extras Mimalloc::MakeExtras() const {
  const char* const twoNumbers = "optionSet(option, value) takes two numbers";
  return {
      {"mimallocClosing", Extra::Kind::Sync, {}, nullptr, Closing, {}},
      {"mimallocInfo", Extra::Kind::Sync, {}, nullptr, Info, {}},
      {"mimallocOptionGet", Extra::Kind::Sync, {{Param::Kind::Int32, "option must be a number"}}, RequireMimalloc, OptionGet, {}},
      {"mimallocOptionSet", Extra::Kind::Sync, {{Param::Kind::Int32, twoNumbers}, {Param::Kind::Int64, twoNumbers}},
       RequireMimalloc, OptionSet, {}},
      {"mimallocStatsText", Extra::Kind::Sync, {}, RequireMimalloc, StatsText, {}},
  };
}

}  // namespace

const Backend& MimallocBackend() {
  static const Mimalloc backend;
  return backend;
}

}  // namespace allocstats
