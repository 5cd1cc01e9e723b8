#include "jemalloc.h"

#include <dlfcn.h>
#include <errno.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "common.h"
#include "detect.h"
#include "procfs.h"

namespace allocstats {

namespace {

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
using NameToMibFn = int (*)(const char*, size_t*, size_t*);
using ByMibFn = int (*)(const size_t*, size_t, void*, size_t*, void*, size_t);

struct JemallocApi {
  MallctlFn mallctl = nullptr;
  NameToMibFn nameToMib = nullptr;
  ByMibFn byMib = nullptr;
  std::string prefix;
};

// Resolved once per process, only when jemalloc serves malloc: a library carrying its own
// prefixed copy must not be driven as if it were the process allocator.
const JemallocApi& Api() {
  static const JemallocApi api = [] {
    JemallocApi a;
    const Detection& d = DetectAllocator();
    if (d.kind != AllocatorKind::Jemalloc) return a;
    a.prefix = d.jemallocPrefix;
    auto find = [&](const char* name) { return dlsym(RTLD_DEFAULT, (a.prefix + name).c_str()); };
    a.mallctl = reinterpret_cast<MallctlFn>(find("mallctl"));
    a.nameToMib = reinterpret_cast<NameToMibFn>(find("mallctlnametomib"));
    a.byMib = reinterpret_cast<ByMibFn>(find("mallctlbymib"));
    if (a.nameToMib == nullptr || a.byMib == nullptr) a.nameToMib = nullptr, a.byMib = nullptr;
    return a;
  }();
  return api;
}

constexpr size_t kMaxMib = 8;
struct Mib {
  size_t parts[kMaxMib];
  size_t length;
};

}  // namespace

// Per environment; the threadpool may sample while the JS thread reads, hence the mutex.
struct JemallocState {
  std::mutex mutex;
  std::unordered_map<std::string, Mib> mibs;
  double lastEpochNs = -1;
  double lastEpochCostNs = -1;
};

namespace {

struct Context {
  std::shared_ptr<JemallocState> state;
  std::shared_ptr<ProcFiles> files;
};

// mallctl by name, through a MIB looked up once per name and cached. Returns 0 or an errno.
int Ctl(JemallocState& s, const std::string& name, void* oldp, size_t* oldlenp, void* newp, size_t newlen) {
  const JemallocApi& api = Api();
  if (api.mallctl == nullptr) return ENOENT;
  if (api.nameToMib == nullptr) return api.mallctl(name.c_str(), oldp, oldlenp, newp, newlen);
  Mib mib;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.mibs.find(name);
    if (it != s.mibs.end()) {
      mib = it->second;
    } else {
      mib.length = kMaxMib;
      int rc = api.nameToMib(name.c_str(), mib.parts, &mib.length);
      if (rc != 0) return rc;
      s.mibs.emplace(name, mib);
    }
  }
  return api.byMib(mib.parts, mib.length, oldp, oldlenp, newp, newlen);
}

template <typename T>
bool ReadAs(JemallocState& s, const char* name, T& out) {
  size_t length = sizeof(T);
  return Ctl(s, name, &out, &length, nullptr, 0) == 0 && length == sizeof(T);
}

double SizeStat(JemallocState& s, const char* name) {
  size_t v = 0;
  return ReadAs(s, name, v) ? static_cast<double>(v) : -1;
}

struct Sample {
  bool serving = false;
  bool statsEnabled = false;
  ProcessMemory process;
  double allocated = -1, active = -1, resident = -1, mapped = -1, retained = -1, metadata = -1;
  double dirtyPages = -1, muzzyPages = -1, pageSize = -1;
  int backgroundThread = -1;  // runtime switch: -1 unknown
  bool refreshed = false;
  double epochAgeNs = -1;     // how old the stats are (since the last epoch refresh)
  double epochCostNs = -1;    // what the last refresh cost
  double costNs = 0;
};

// Writing epoch merges every arena's stats into the global ones: heavy on a big heap with
// many arenas, so it runs at most once per `minIntervalNs` per environment.
void RefreshEpoch(JemallocState& s, double minIntervalNs, Sample& out) {
  double now = NowNs();
  bool due;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    due = s.lastEpochNs < 0 || now - s.lastEpochNs >= minIntervalNs;
    if (due) s.lastEpochNs = now;  // claimed: a concurrent sample does not refresh twice
  }
  if (due) {
    uint64_t epoch = 1;
    size_t length = sizeof epoch;
    double start = NowNs();
    Ctl(s, "epoch", &epoch, &length, &epoch, sizeof epoch);
    double end = NowNs();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.lastEpochNs = end;
    s.lastEpochCostNs = end - start;
    out.refreshed = true;
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  out.epochAgeNs = NowNs() - s.lastEpochNs;
  out.epochCostNs = s.lastEpochCostNs;
}

Sample TakeSample(const Context& ctx, double minIntervalNs) {
  Sample out;
  double start = NowNs();
  ReadProcessMemory(ctx.files.get(), out.process);
  out.serving = Api().mallctl != nullptr;
  if (out.serving) {
    JemallocState& s = *ctx.state;
    bool stats = false;
    out.statsEnabled = ReadAs(s, "config.stats", stats) && stats;
    bool background = false;
    if (ReadAs(s, "background_thread", background)) out.backgroundThread = background ? 1 : 0;
    out.pageSize = SizeStat(s, "arenas.page");
    if (out.statsEnabled) {
      RefreshEpoch(s, minIntervalNs, out);
      out.allocated = SizeStat(s, "stats.allocated");
      out.active = SizeStat(s, "stats.active");
      out.resident = SizeStat(s, "stats.resident");
      out.mapped = SizeStat(s, "stats.mapped");
      out.retained = SizeStat(s, "stats.retained");
      out.metadata = SizeStat(s, "stats.metadata");
      // 4096 = MALLCTL_ARENAS_ALL: all arenas merged.
      out.dirtyPages = SizeStat(s, "stats.arenas.4096.pdirty");
      out.muzzyPages = SizeStat(s, "stats.arenas.4096.pmuzzy");
    }
  }
  out.costNs = NowNs() - start;
  return out;
}

struct TrimOutcome {
  Sample before, after;
  int result = 0;
  double durationNs = 0;
  double rssBefore = -1, rssAfter = -1;
};

TrimOutcome TakeTrim(const Context& ctx, bool decay) {
  // One trim at a time in the whole process, whichever thread or environment asks.
  static std::mutex trimming;
  std::lock_guard<std::mutex> lock(trimming);
  TrimOutcome outcome;
  outcome.before = TakeSample(ctx, 0);
  ProcessMemory before, after;
  ReadProcessMemory(ctx.files.get(), before);
  double start = NowNs();
  // purge: return every dirty and muzzy page now. decay: only what the decay curves allow.
  outcome.result = Ctl(*ctx.state, decay ? "arena.4096.decay" : "arena.4096.purge", nullptr, nullptr, nullptr, 0);
  outcome.durationNs = NowNs() - start;
  ReadProcessMemory(ctx.files.get(), after);
  outcome.rssBefore = before.rss;
  outcome.rssAfter = after.rss;
  outcome.after = TakeSample(ctx, 0);
  return outcome;
}

Napi::Value SampleToJs(Napi::Env env, const Sample& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("serving", s.serving);
  o.Set("statsEnabled", s.statsEnabled);
  o.Set("process", ProcessMemoryToJs(env, s.process));
  o.Set("allocated", SizeOrNull(env, s.allocated));
  o.Set("active", SizeOrNull(env, s.active));
  o.Set("resident", SizeOrNull(env, s.resident));
  o.Set("mapped", SizeOrNull(env, s.mapped));
  o.Set("retained", SizeOrNull(env, s.retained));
  o.Set("metadata", SizeOrNull(env, s.metadata));
  o.Set("dirtyPages", SizeOrNull(env, s.dirtyPages));
  o.Set("muzzyPages", SizeOrNull(env, s.muzzyPages));
  o.Set("pageSize", SizeOrNull(env, s.pageSize));
  o.Set("backgroundThread", s.backgroundThread < 0 ? env.Null() : Napi::Boolean::New(env, s.backgroundThread == 1));
  o.Set("refreshed", s.refreshed);
  o.Set("epochAgeNs", SizeOrNull(env, s.epochAgeNs));
  o.Set("epochCostNs", SizeOrNull(env, s.epochCostNs));
  o.Set("costNs", s.costNs);
  return o;
}

Napi::Value TrimToJs(Napi::Env env, const TrimOutcome& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("result", t.result);
  o.Set("durationNs", t.durationNs);
  o.Set("rssBefore", SizeOrNull(env, t.rssBefore));
  o.Set("rssAfter", SizeOrNull(env, t.rssAfter));
  o.Set("before", SampleToJs(env, t.before));
  o.Set("after", SampleToJs(env, t.after));
  return o;
}

Context State(Napi::Env env) {
  AddonData& data = Data(env);
  if (!data.jemalloc) data.jemalloc = std::make_shared<JemallocState>();
  return Context{data.jemalloc, data.files};
}

void RequireJemalloc(Napi::Env env) {
  if (Api().mallctl == nullptr) {
    throw CodedError(env, "ERR_ALLOCATOR_UNSUPPORTED", "jemalloc does not serve malloc() in this process");
  }
}

// Validated in TypeScript; checked again here only so that a bad call cannot crash.
double IntervalArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw CodedError(info.Env(), "ERR_INVALID_ARG_TYPE", "interval must be a number");
  double ms = info[i].As<Napi::Number>().DoubleValue();
  if (!(ms >= 0 && ms <= 1e12)) throw CodedError(info.Env(), "ERR_OUT_OF_RANGE", "interval out of range");
  return ms * 1e6;
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw CodedError(info.Env(), "ERR_INVALID_ARG_TYPE", std::string(what) + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

enum class CtlType { Bool, Unsigned, SizeT, SsizeT, Uint64, String, Void };

CtlType TypeArg(const Napi::CallbackInfo& info, size_t i) {
  std::string t = StringArg(info, i, "type");
  if (t == "bool") return CtlType::Bool;
  if (t == "unsigned") return CtlType::Unsigned;
  if (t == "size_t") return CtlType::SizeT;
  if (t == "ssize_t") return CtlType::SsizeT;
  if (t == "uint64_t") return CtlType::Uint64;
  if (t == "string") return CtlType::String;
  if (t == "void") return CtlType::Void;
  throw CodedError(info.Env(), "ERR_MALLCTL_TYPE", "unknown mallctl type " + t);
}

Napi::Error OutOfRange(Napi::Env env, const std::string& message) {
  Napi::RangeError error = Napi::RangeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  return error;
}

[[noreturn]] void ThrowCtl(Napi::Env env, int rc, const std::string& name, const char* action) {
  const char* code = "ERR_MALLCTL_FAILED";
  std::string why = strerror(rc);
  if (rc == ENOENT) code = "ERR_MALLCTL_NAME", why = "no such name in this jemalloc";
  if (rc == EPERM) code = "ERR_MALLCTL_ACCESS", why = std::string("cannot be ") + (strcmp(action, "read") == 0 ? "read" : "written");
  if (rc == EINVAL) code = "ERR_MALLCTL_VALUE", why = "invalid value or type";
  if (rc == EFAULT) code = "ERR_MALLCTL_VALUE", why = "rejected by jemalloc (EFAULT)";
  if (rc == EAGAIN) code = "ERR_MALLCTL_FAILED", why = "out of memory or resource unavailable (EAGAIN)";
  throw CodedError(env, code, "mallctl " + std::string(action) + " of " + name + " failed: " + why);
}

Napi::Value SampleSyncJs(const Napi::CallbackInfo& info) {
  double interval = IntervalArg(info, 0);
  return SampleToJs(info.Env(), TakeSample(State(info.Env()), interval));
}

Napi::Value SampleAsyncJs(const Napi::CallbackInfo& info) {
  double interval = IntervalArg(info, 0);
  Context ctx = State(info.Env());
  return PromiseWorker<Sample>::Run(
      info.Env(), "allocatorStats.jemallocSample", [ctx, interval](Failure&) { return TakeSample(ctx, interval); },
      [](Napi::Env env, Sample& s) { return SampleToJs(env, s); });
}

Napi::Value TrimSyncJs(const Napi::CallbackInfo& info) {
  RequireJemalloc(info.Env());
  bool decay = info.Length() > 0 && info[0].ToBoolean().Value();
  return TrimToJs(info.Env(), TakeTrim(State(info.Env()), decay));
}

Napi::Value TrimAsyncJs(const Napi::CallbackInfo& info) {
  RequireJemalloc(info.Env());
  bool decay = info.Length() > 0 && info[0].ToBoolean().Value();
  Context ctx = State(info.Env());
  return PromiseWorker<TrimOutcome>::Run(
      info.Env(), "allocatorStats.jemallocTrim", [ctx, decay](Failure&) { return TakeTrim(ctx, decay); },
      [](Napi::Env env, TrimOutcome& t) { return TrimToJs(env, t); });
}

constexpr double kMaxSafe = 9007199254740991.0;

// Reads a mallctl whose type the caller (TypeScript's table of known names) decided.
Napi::Value ReadJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireJemalloc(env);
  std::string name = StringArg(info, 0, "name");
  CtlType type = TypeArg(info, 1);
  Context ctx = State(env);
  JemallocState& s = *ctx.state;
  // jemalloc copies at most *oldlenp bytes and reports EINVAL on a size mismatch, so a
  // wrong type cannot overrun the buffer.
  union {
    bool b;
    unsigned u;
    size_t z;
    ssize_t sz;
    uint64_t u64;
    const char* str;
    unsigned char bytes[16];
  } value;
  memset(&value, 0, sizeof value);
  size_t length = 0;
  switch (type) {
    case CtlType::Bool: length = sizeof(bool); break;
    case CtlType::Unsigned: length = sizeof(unsigned); break;
    case CtlType::SizeT: length = sizeof(size_t); break;
    case CtlType::SsizeT: length = sizeof(ssize_t); break;
    case CtlType::Uint64: length = sizeof(uint64_t); break;
    case CtlType::String: length = sizeof(const char*); break;
    case CtlType::Void:
      throw CodedError(env, "ERR_MALLCTL_ACCESS", "mallctl " + name + " is an action: it has no value to read");
  }
  int rc = Ctl(s, name, &value, &length, nullptr, 0);
  if (rc != 0) ThrowCtl(env, rc, name, "read");
  switch (type) {
    case CtlType::Bool: return Napi::Boolean::New(env, value.b);
    case CtlType::Unsigned: return Napi::Number::New(env, value.u);
    case CtlType::SizeT:
      if (static_cast<double>(value.z) > kMaxSafe) {
        throw OutOfRange(env, "mallctl " + name + " is above 2^53 and cannot be a number");
      }
      return Napi::Number::New(env, static_cast<double>(value.z));
    case CtlType::SsizeT: return Napi::Number::New(env, static_cast<double>(value.sz));
    case CtlType::Uint64: return Napi::BigInt::New(env, static_cast<uint64_t>(value.u64));
    case CtlType::String: {
      if (value.str == nullptr) return env.Null();
      // Copied through /proc/self/mem so that a pointer that is not a string cannot fault.
      std::string text;
      char chunk[64];
      uintptr_t at = reinterpret_cast<uintptr_t>(value.str);
      while (text.size() < 4096) {
        if (!SafeRead(ctx.files.get(), chunk, at, sizeof chunk)) {
          // Near the end of a mapping: fall back to byte reads.
          if (!SafeRead(ctx.files.get(), chunk, at, 1)) {
            throw CodedError(env, "ERR_MALLCTL_VALUE", "mallctl " + name + " did not return a readable string");
          }
          if (chunk[0] == '\0') return Napi::String::New(env, text);
          text.push_back(chunk[0]);
          at++;
          continue;
        }
        const void* nul = memchr(chunk, '\0', sizeof chunk);
        if (nul != nullptr) {
          text.append(chunk, static_cast<const char*>(nul) - chunk);
          return Napi::String::New(env, text);
        }
        text.append(chunk, sizeof chunk);
        at += sizeof chunk;
      }
      return Napi::String::New(env, text);
    }
    case CtlType::Void: break;
  }
  return env.Null();
}

Napi::Value WriteJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireJemalloc(env);
  std::string name = StringArg(info, 0, "name");
  CtlType type = TypeArg(info, 1);
  Napi::Value v = info.Length() > 2 ? info[2] : env.Undefined();
  auto wrong = [&](const char* what) {
    Napi::TypeError error = Napi::TypeError::New(env, "mallctl " + name + " takes " + what);
    error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    return error;
  };
  auto integral = [&](double lo, double hi) -> double {
    if (!v.IsNumber()) throw wrong("a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi) || std::floor(d) != d) {
      throw OutOfRange(env, "value for mallctl " + name + " is out of range");
    }
    return d;
  };
  Context ctx = State(env);
  int rc = 0;
  switch (type) {
    case CtlType::Bool: {
      if (!v.IsBoolean()) throw wrong("a boolean");
      bool b = v.As<Napi::Boolean>().Value();
      rc = Ctl(*ctx.state, name, nullptr, nullptr, &b, sizeof b);
      break;
    }
    case CtlType::Unsigned: {
      unsigned u = static_cast<unsigned>(integral(0, 4294967295.0));
      rc = Ctl(*ctx.state, name, nullptr, nullptr, &u, sizeof u);
      break;
    }
    case CtlType::SizeT: {
      size_t z = static_cast<size_t>(integral(0, kMaxSafe));
      rc = Ctl(*ctx.state, name, nullptr, nullptr, &z, sizeof z);
      break;
    }
    case CtlType::SsizeT: {
      ssize_t z = static_cast<ssize_t>(integral(-kMaxSafe, kMaxSafe));
      rc = Ctl(*ctx.state, name, nullptr, nullptr, &z, sizeof z);
      break;
    }
    case CtlType::Uint64: {
      uint64_t u = 0;
      if (v.IsBigInt()) {
        bool lossless = false;
        u = v.As<Napi::BigInt>().Uint64Value(&lossless);
        if (!lossless) throw OutOfRange(env, "value for mallctl " + name + " is out of range");
      } else {
        u = static_cast<uint64_t>(integral(0, kMaxSafe));
      }
      rc = Ctl(*ctx.state, name, nullptr, nullptr, &u, sizeof u);
      break;
    }
    case CtlType::String: {
      if (!v.IsString()) throw wrong("a string");
      std::string text = v.As<Napi::String>().Utf8Value();
      const char* p = text.c_str();
      rc = Ctl(*ctx.state, name, nullptr, nullptr, &p, sizeof p);
      break;
    }
    case CtlType::Void:
      rc = Ctl(*ctx.state, name, nullptr, nullptr, nullptr, 0);
      break;
  }
  if (rc != 0) ThrowCtl(env, rc, name, "write");
  return env.Undefined();
}

// Whether a name exists at all, whatever its type: separates a bad name from a type we do
// not know.
Napi::Value ExistsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireJemalloc(env);
  std::string name = StringArg(info, 0, "name");
  const JemallocApi& api = Api();
  if (api.nameToMib == nullptr) return env.Null();
  size_t mib[kMaxMib];
  size_t length = kMaxMib;
  return Napi::Boolean::New(env, api.nameToMib(name.c_str(), mib, &length) == 0);
}

Napi::Value InfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const JemallocApi& api = Api();
  Napi::Object o = Napi::Object::New(env);
  o.Set("serving", api.mallctl != nullptr);
  o.Set("prefix", api.mallctl != nullptr ? Napi::String::New(env, api.prefix) : env.Null());
  o.Set("mibCache", api.nameToMib != nullptr);
  return o;
}

}  // namespace

void InitJemalloc(Napi::Env env, Napi::Object exports) {
  exports.Set("jemallocInfo", Napi::Function::New(env, InfoJs, "jemallocInfo"));
  exports.Set("jemallocSampleSync", Napi::Function::New(env, SampleSyncJs, "jemallocSampleSync"));
  exports.Set("jemallocSample", Napi::Function::New(env, SampleAsyncJs, "jemallocSample"));
  exports.Set("jemallocTrimSync", Napi::Function::New(env, TrimSyncJs, "jemallocTrimSync"));
  exports.Set("jemallocTrim", Napi::Function::New(env, TrimAsyncJs, "jemallocTrim"));
  exports.Set("jemallocRead", Napi::Function::New(env, ReadJs, "jemallocRead"));
  exports.Set("jemallocWrite", Napi::Function::New(env, WriteJs, "jemallocWrite"));
  exports.Set("jemallocExists", Napi::Function::New(env, ExistsJs, "jemallocExists"));
}

}  // namespace allocstats
