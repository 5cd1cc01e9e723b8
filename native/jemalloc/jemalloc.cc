// jemalloc through its mallctl() interface, resolved with dlsym under the symbol prefix
// detection found ("", "je_" or "_rjem_"); never linked.
#include <dlfcn.h>
#include <errno.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <vector>

#include "core/backend.h"
#include "core/clock.h"
#include "core/detect.h"
#include "core/error.h"
#include "core/procfs.h"

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
    if (d.backend != &JemallocBackend()) return a;
    a.prefix = d.symbolPrefix;
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
// A few hundred names are ever read by the library itself; callers may read any number.
constexpr size_t kMaxCachedMibs = 1024;
// jemalloc's own names are at most a few dozen characters; longer ones (an index written with
// thousands of leading zeros) are looked up every time rather than kept.
constexpr size_t kMaxCachedNameLength = 128;

// Names whose value jemalloc reads through a pointer: a C string, or a structure of hooks.
// Writing a number there makes jemalloc follow a bogus pointer, so the type a caller names is
// checked against this list here, whatever TypeScript's table said.
enum class Pointer { None, String, Structure, ReadOnly };

Pointer PointerOf(const std::string& name) {
  auto ends = [&](const char* suffix) {
    const size_t n = strlen(suffix);
    return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
  };
  // Read-only: jemalloc refuses every write (EPERM) before it looks at the value.
  if (name == "version" || name.rfind("opt.", 0) == 0 || name.rfind("config.", 0) == 0) return Pointer::ReadOnly;
  if (ends(".extent_hooks") || ends(".hooks") || name == "arenas.create" || name.rfind("experimental.", 0) == 0) {
    return Pointer::Structure;
  }
  if (ends(".dss") || ends(".name") || name == "prof.dump" || name == "prof.prefix") return Pointer::String;
  return Pointer::None;
}
// Names where jemalloc acts on its argument unchecked, or on memory still in use: a wrong (or
// merely current) argument is undefined behaviour, not an error code. Refused whatever the type
// and value, for reads too (a read of arenas.lookup looks up whatever its stack held).
const char* RefusedBecause(const std::string& name) {
  auto ends = [&](const char* suffix) {
    const size_t n = strlen(suffix);
    return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
  };
  if (name == "tcache.flush" || name == "tcache.destroy") {
    return "it takes the index of a tcache from tcache.create, which jemalloc does not check: any "
           "other index crashes the process (thread.tcache.flush flushes this thread's cache)";
  }
  if (name == "arenas.lookup") return "it takes a pointer, which jemalloc follows unchecked";
  // arena.<i>.<action>: the index may be spelled many ways (arena.00, arena.+0), the ends not.
  if (name.rfind("arena.", 0) == 0 && (ends(".reset") || ends(".destroy"))) {
    return "it discards every allocation in the arena, which this process (V8, Node, native "
           "code) may still be using";
  }
  return nullptr;
}

void RefuseUnsafe(const std::string& name) {
  if (const char* why = RefusedBecause(name)) {
    throw CodedError("ERR_MALLCTL_ACCESS", "mallctl " + name + " is refused: " + why);
  }
}

struct Mib {
  size_t parts[kMaxMib];
  size_t length;
};

}  // namespace

// Per environment; the threadpool may sample while the JS thread reads, hence the mutex.
struct JemallocState : BackendState {
  std::mutex mutex;
  std::unordered_map<std::string, Mib> mibs;
  double lastEpochNs = -1;
  double lastEpochCostNs = -1;
};

namespace {

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
      // Names come from callers (mallctl.read of any arena or bin index, of any length): keep
      // the cache bounded; the names read on every sample are looked up again after a reset.
      if (name.size() <= kMaxCachedNameLength) {
        if (s.mibs.size() >= kMaxCachedMibs) s.mibs.clear();
        s.mibs.emplace(name, mib);
      }
    }
  }
  return api.byMib(mib.parts, mib.length, oldp, oldlenp, newp, newlen);
}

template <typename T>
bool ReadAs(JemallocState& s, const char* name, T& out) {
  size_t length = sizeof(T);
  return Ctl(s, name, &out, &length, nullptr, 0) == 0 && length == sizeof(T);
}

#define SAMPLE_FIELDS(X)                                                                                      \
  X(statsEnabled) X(allocated) X(active) X(resident) X(mapped) X(retained) X(metadata) X(dirtyPages) X(muzzyPages) \
  X(pageSize) X(backgroundThread) X(refreshed) X(epochAgeNs) X(epochCostNs)
ALLOCSTATS_DECLARE_FIELDS(SampleField, SAMPLE_FIELDS);
// epochIntervalNs: the stats may be this old before a sample refreshes them.
#define SAMPLE_ARGS(X) X(epochIntervalNs)
ALLOCSTATS_DECLARE_FIELDS(SampleArg, SAMPLE_ARGS);
// decay: 1 for arena.4096.decay (what the decay curves allow now), 0 for arena.4096.purge.
#define TRIM_ARGS(X) X(decay)
ALLOCSTATS_DECLARE_FIELDS(TrimArg, TRIM_ARGS);
ALLOCSTATS_DECLARE_FIELDS(TrimField, ALLOCSTATS_NO_FIELDS);

// Writing epoch merges every arena's stats into the global ones: heavy on a big heap with
// many arenas, so it runs at most once per `minIntervalNs` per environment.
void RefreshEpoch(JemallocState& s, double minIntervalNs, Record& out) {
  double now = NowNs();
  bool due;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    due = s.lastEpochNs < 0 || !(now - s.lastEpochNs < minIntervalNs);
    if (due) s.lastEpochNs = now;  // claimed: a concurrent sample does not refresh twice
  }
  out[SampleField::refreshed] = 0;
  if (due) {
    uint64_t epoch = 1;
    size_t length = sizeof epoch;
    double start = NowNs();
    Ctl(s, "epoch", &epoch, &length, &epoch, sizeof epoch);
    double end = NowNs();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.lastEpochNs = end;
    s.lastEpochCostNs = end - start;
    out[SampleField::refreshed] = 1;
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  out[SampleField::epochAgeNs] = NowNs() - s.lastEpochNs;
  out[SampleField::epochCostNs] = s.lastEpochCostNs < 0 ? kUnknown : s.lastEpochCostNs;
}

double SizeStat(JemallocState& s, const char* name) {
  size_t v = 0;
  return ReadAs(s, name, v) ? static_cast<double>(v) : kUnknown;
}

void TakeSample(JemallocState& s, double minIntervalNs, Record& out) {
  bool stats = false;
  out[SampleField::statsEnabled] = ReadAs(s, "config.stats", stats) && stats ? 1 : 0;
  bool background = false;
  if (ReadAs(s, "background_thread", background)) out[SampleField::backgroundThread] = background ? 1 : 0;
  out[SampleField::pageSize] = SizeStat(s, "arenas.page");
  if (!stats) return;
  RefreshEpoch(s, minIntervalNs, out);
  out[SampleField::allocated] = SizeStat(s, "stats.allocated");
  out[SampleField::active] = SizeStat(s, "stats.active");
  out[SampleField::resident] = SizeStat(s, "stats.resident");
  out[SampleField::mapped] = SizeStat(s, "stats.mapped");
  out[SampleField::retained] = SizeStat(s, "stats.retained");
  out[SampleField::metadata] = SizeStat(s, "stats.metadata");
  // 4096 = MALLCTL_ARENAS_ALL: all arenas merged.
  out[SampleField::dirtyPages] = SizeStat(s, "stats.arenas.4096.pdirty");
  out[SampleField::muzzyPages] = SizeStat(s, "stats.arenas.4096.pmuzzy");
}

// jemalloc serves malloc if its per-thread allocation counter moves when we malloc.
// Returns 1 serving, 0 not serving, -1 cannot tell (built without stats).
int JemallocServes(MallctlFn mallctl) {
  uint64_t before = 0, after = 0;
  size_t size = sizeof before;
  if (mallctl("thread.allocated", &before, &size, nullptr, 0) != 0) return -1;
  void* p = ProbeAllocate(kProbeBytes);
  size = sizeof after;
  int rc = mallctl("thread.allocated", &after, &size, nullptr, 0);
  ProbeFree(p);
  if (rc != 0) return -1;
  return after - before >= kProbeBytes ? 1 : 0;
}

class Jemalloc final : public Backend {
 public:
  void Probe(Detection& d) const override {
    static const char* const kJemallocPrefixes[] = {"", "je_", "_rjem_"};
    for (const char* prefix : kJemallocPrefixes) {
      std::string symbol = std::string(prefix) + "mallctl";
      auto mallctl = reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, symbol.c_str()));
      if (mallctl == nullptr) continue;
      std::string library = LibraryOf(reinterpret_cast<void*>(mallctl));
      int serves = JemallocServes(mallctl);
      const bool confirmed = serves == 1;
      // Without stats the counter cannot confirm it; an unprefixed mallctl that glibc's
      // counters do not contradict is the process allocator.
      if (serves == -1 && prefix[0] == '\0' && !GlibcBackend().ServesNow()) serves = 1;
      if (serves == 1 && d.backend == nullptr) {
        Claim(d, "jemalloc", library,
              confirmed ? "thread.allocated moved on malloc (" + symbol + ")"
                        : "symbol " + symbol + " (built without stats: not confirmed by a counter)");
        d.symbolPrefix = prefix;
        const char* version = nullptr;
        size_t size = sizeof version;
        if (mallctl("version", &version, &size, nullptr, 0) == 0 && version != nullptr) d.version = version;
      } else if (serves != 1) {
        d.inactive.emplace_back("jemalloc", library);
      }
    }
  }

  const char* Name() const override { return "jemalloc"; }
  bool Serving() const override { return Api().mallctl != nullptr; }
  WireNames Wire() const override { return WireOf<SampleField, SampleArg, TrimField, TrimArg>(); }
  std::shared_ptr<BackendState> NewState(Environment&) const override { return std::make_shared<JemallocState>(); }

  void Sample(const Call& call, Record& out) const override {
    TakeSample(static_cast<JemallocState&>(*call.state), call.Arg(SampleArg::epochIntervalNs), out);
  }
  // Around a trim the stats are always refreshed.
  void Gauge(const Call& call, Record& out) const override { TakeSample(static_cast<JemallocState&>(*call.state), 0, out); }
  int Trim(const Call& call, Record&) const override {
    const bool decay = call.Arg(TrimArg::decay) == 1;
    return Ctl(static_cast<JemallocState&>(*call.state), decay ? "arena.4096.decay" : "arena.4096.purge", nullptr, nullptr,
               nullptr, 0);
  }
  Extras MakeExtras() const override;
};

void RequireJemalloc() {
  if (Api().mallctl == nullptr) ThrowNotServing("jemalloc");
}

enum class CtlType { Bool, Unsigned, SizeT, SsizeT, Uint64, String, Void };

CtlType TypeOf(const std::string& t) {
  if (t == "bool") return CtlType::Bool;
  if (t == "unsigned") return CtlType::Unsigned;
  if (t == "size_t") return CtlType::SizeT;
  if (t == "ssize_t") return CtlType::SsizeT;
  if (t == "uint64_t") return CtlType::Uint64;
  if (t == "string") return CtlType::String;
  if (t == "void") return CtlType::Void;
  throw CodedError("ERR_MALLCTL_TYPE", "unknown mallctl type " + t);
}

[[noreturn]] void ThrowCtl(int rc, const std::string& name, const char* action) {
  const char* code = "ERR_MALLCTL_FAILED";
  std::string why = strerror(rc);
  if (rc == ENOENT) code = "ERR_MALLCTL_NAME", why = "no such name in this jemalloc";
  if (rc == EPERM) code = "ERR_MALLCTL_ACCESS", why = std::string("cannot be ") + (strcmp(action, "read") == 0 ? "read" : "written");
  if (rc == EINVAL) code = "ERR_MALLCTL_VALUE", why = "invalid value or type";
  if (rc == EFAULT) code = "ERR_MALLCTL_VALUE", why = "rejected by jemalloc (EFAULT)";
  if (rc == EAGAIN) code = "ERR_MALLCTL_FAILED", why = "out of memory or resource unavailable (EAGAIN)";
  throw CodedError(code, "mallctl " + std::string(action) + " of " + name + " failed: " + why);
}

constexpr double kMaxSafe = 9007199254740991.0;

// A C string jemalloc returned, copied through /proc/self/mem so that a pointer that is not a
// string cannot fault.
Value ReadString(const ProcFiles* files, const char* str, const std::string& name) {
  if (str == nullptr) return Value::Null();
  std::string text;
  char chunk[64];
  uintptr_t at = reinterpret_cast<uintptr_t>(str);
  while (text.size() < 4096) {
    if (!SafeRead(files, chunk, at, sizeof chunk)) {
      // Near the end of a mapping: fall back to byte reads.
      if (!SafeRead(files, chunk, at, 1)) {
        throw CodedError("ERR_MALLCTL_VALUE", "mallctl " + name + " did not return a readable string");
      }
      if (chunk[0] == '\0') return Value::String(text);
      text.push_back(chunk[0]);
      at++;
      continue;
    }
    const void* nul = memchr(chunk, '\0', sizeof chunk);
    if (nul != nullptr) {
      text.append(chunk, static_cast<const char*>(nul) - chunk);
      return Value::String(text);
    }
    text.append(chunk, sizeof chunk);
    at += sizeof chunk;
  }
  return Value::String(text);
}

// Reads a mallctl whose type the caller (TypeScript's table of known names) decided.
Value Read(const ExtraCall& call) {
  const std::string& name = call.args[0].text;
  RefuseUnsafe(name);
  CtlType type = TypeOf(call.args[1].text);
  JemallocState& s = static_cast<JemallocState&>(*call.state);
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
      throw CodedError("ERR_MALLCTL_ACCESS", "mallctl " + name + " is an action: it has no value to read");
  }
  int rc = Ctl(s, name, &value, &length, nullptr, 0);
  if (rc != 0) ThrowCtl(rc, name, "read");
  switch (type) {
    case CtlType::Bool: return Value::Bool(value.b);
    case CtlType::Unsigned: return Value::Number(value.u);
    case CtlType::SizeT:
      if (static_cast<double>(value.z) > kMaxSafe) {
        throw CodedError("ERR_OUT_OF_RANGE", "mallctl " + name + " is above 2^53 and cannot be a number", CodedError::Kind::Range);
      }
      return Value::Number(static_cast<double>(value.z));
    case CtlType::SsizeT: return Value::Number(static_cast<double>(value.sz));
    case CtlType::Uint64: return Value::BigInt(value.u64);
    case CtlType::String: return ReadString(call.files.get(), value.str, name);
    case CtlType::Void: break;
  }
  return Value::Null();
}

template <typename T>
int WriteAs(JemallocState& s, const std::string& name, T value) {
  return Ctl(s, name, nullptr, nullptr, &value, sizeof value);
}

// The value's kind must be the type's; its range was checked in TypeScript
// (src/allocators/jemalloc/mallctl.ts), and a whole number converts to every integer type
// without undefined behaviour. A fraction is refused here (ERR_OUT_OF_RANGE): no type holds it.
Value Write(const ExtraCall& call) {
  const std::string& name = call.args[0].text;
  RefuseUnsafe(name);
  CtlType type = TypeOf(call.args[1].text);
  const Value& v = call.args[2];
  auto wrong = [&](const char* what) {
    return CodedError("ERR_INVALID_ARG_TYPE", "mallctl " + name + " takes " + what, CodedError::Kind::Type);
  };
  auto integral = [&]() -> int64_t {
    if (v.is(Value::Kind::Number)) {
      throw CodedError("ERR_OUT_OF_RANGE", "mallctl " + name + " takes a whole number", CodedError::Kind::Range);
    }
    if (!v.is(Value::Kind::Int64)) throw wrong("a number");
    return v.int64;
  };
  const Pointer pointer = PointerOf(name);
  if (pointer == Pointer::Structure ||
      (pointer != Pointer::ReadOnly && (pointer == Pointer::String) != (type == CtlType::String))) {
    throw CodedError("ERR_MALLCTL_TYPE",
                     "mallctl " + name + (pointer == Pointer::Structure ? " takes a structure of hooks"
                                          : pointer == Pointer::String  ? " takes a string"
                                                                        : " does not take a string"));
  }
  JemallocState& s = static_cast<JemallocState&>(*call.state);
  int rc = 0;
  switch (type) {
    case CtlType::Bool:
      if (!v.is(Value::Kind::Bool)) throw wrong("a boolean");
      rc = WriteAs(s, name, v.flag);
      break;
    case CtlType::Unsigned: rc = WriteAs(s, name, static_cast<unsigned>(integral())); break;
    case CtlType::SizeT: rc = WriteAs(s, name, static_cast<size_t>(integral())); break;
    case CtlType::SsizeT: rc = WriteAs(s, name, static_cast<ssize_t>(integral())); break;
    case CtlType::Uint64:
      rc = WriteAs(s, name, v.is(Value::Kind::Uint64) ? v.uint64 : static_cast<uint64_t>(integral()));
      break;
    case CtlType::String:
      if (!v.is(Value::Kind::String)) throw wrong("a string");
      rc = WriteAs(s, name, v.text.c_str());
      break;
    case CtlType::Void:
      rc = Ctl(s, name, nullptr, nullptr, nullptr, 0);
      break;
  }
  if (rc != 0) ThrowCtl(rc, name, "write");
  return Value();
}

// Whether a name exists at all, whatever its type: separates a bad name from a type we do
// not know.
Value Exists(const ExtraCall& call) {
  const JemallocApi& api = Api();
  if (api.nameToMib == nullptr) return Value::Null();
  size_t mib[kMaxMib];
  size_t length = kMaxMib;
  return Value::Bool(api.nameToMib(call.args[0].text.c_str(), mib, &length) == 0);
}

Value Info(const ExtraCall&) {
  const JemallocApi& api = Api();
  Value o = Value::Object();
  o.Set("serving", Value::Bool(api.mallctl != nullptr));
  o.Set("prefix", api.mallctl != nullptr ? Value::String(api.prefix) : Value::Null());
  o.Set("mibCache", Value::Bool(api.nameToMib != nullptr));
  return o;
}

Extras Jemalloc::MakeExtras() const {
  const Param name{Param::Kind::String, "name must be a string"};
  const Param type{Param::Kind::String, "type must be a string"};
  const Param value{Param::Kind::Any, "value must be a boolean, a number, a bigint below 2^64, a string or undefined"};
  return {
      {"jemallocInfo", Extra::Kind::Sync, {}, nullptr, Info, {}},
      {"jemallocRead", Extra::Kind::Sync, {name, type}, RequireJemalloc, Read, {}},
      {"jemallocWrite", Extra::Kind::Sync, {name, type, value}, RequireJemalloc, Write, {}},
      {"jemallocExists", Extra::Kind::Sync, {name}, RequireJemalloc, Exists, {}},
  };
}

}  // namespace

const Backend& JemallocBackend() {
  static const Jemalloc backend;
  return backend;
}

}  // namespace allocstats
