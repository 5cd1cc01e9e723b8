// What every backend does alike, written once: the backend table, the sample and trim entry
// points (each a sync/async pair), the measured-trim skeleton and the process-wide trim lock.
#include "backend.h"

#include <cstring>
#include <mutex>

#include "addon.h"
#include "common.h"

namespace allocstats {

namespace {

#define COMMON_SAMPLE_FIELDS(X) X(serving) X(costNs) X(rss) X(rssAnon) X(rssFile) X(rssShmem) X(swap)
ALLOCSTATS_DECLARE_FIELDS(CommonSample, COMMON_SAMPLE_FIELDS);

#define COMMON_TRIM_FIELDS(X) X(result) X(durationNs) X(rssBefore) X(rssAfter)
ALLOCSTATS_DECLARE_FIELDS(CommonTrim, COMMON_TRIM_FIELDS);

const Backend* const* Table(size_t& count) {
  count = Backends().size();
  return Backends().data();
}

// One trim at a time in the whole process, whichever thread, environment or backend asks:
// trims hold allocator locks, and two at once only make both slower.
std::mutex& TrimLock() {
  static std::mutex* lock = new std::mutex();  // never destroyed: late threads may still trim at exit
  return *lock;
}

void PutProcess(double* out, const ProcessMemory& p) {
  out[CommonSample::rss] = p.rss, out[CommonSample::rssAnon] = p.rssAnon, out[CommonSample::rssFile] = p.rssFile;
  out[CommonSample::rssShmem] = p.rssShmem, out[CommonSample::swap] = p.swap;
}

struct SampleResult {
  double common[CommonSample::kCount];
  Record own;
};

// `full`: /proc/self/status (every process field) rather than statm (rss and rssAnon, at a
// seventh of the cost): the JS thread reads statm, the threadpool can afford status.
SampleResult TakeSample(const Backend& backend, const Call& call, bool full) {
  SampleResult r;
  double start = NowNs();
  ProcessMemory process;
  if (full) {
    ReadProcessStatus(call.files.get(), process);
  } else {
    ReadProcessStatm(call.files.get(), process);
  }
  PutProcess(r.common, process);
  r.common[CommonSample::serving] = backend.Serving() ? 1 : 0;
  r.own.Reset(backend.SampleFields().count);
  if (backend.Serving()) backend.Sample(call, r.own);
  r.common[CommonSample::costNs] = NowNs() - start;
  return r;
}

struct TrimResult {
  double common[CommonTrim::kCount];
  Record before, after, own;
};

// The measured trim: RSS from the OS right before and after the allocator's own call.
TrimResult TakeTrim(const Backend& backend, const Call& call) {
  TrimResult t;
  const size_t gauge = backend.GaugeFields().count;
  t.before.Reset(gauge);
  t.after.Reset(gauge);
  t.own.Reset(backend.TrimFields().count);
  ProcessMemory before, after;
  double start = 0;
  Backend::Wait wait;
  {
    std::lock_guard<std::mutex> lock(TrimLock());
    if (backend.GaugeBefore()) backend.Gauge(call, t.before);
    ReadProcessStatm(call.files.get(), before);
    start = NowNs();
    int result = 0;
    wait = backend.StartTrim(call, t.own, result);
    t.common[CommonTrim::result] = result;
  }
  if (wait) wait(t.own);
  t.common[CommonTrim::durationNs] = NowNs() - start;
  ReadProcessStatm(call.files.get(), after);
  t.common[CommonTrim::rssBefore] = before.rss;
  t.common[CommonTrim::rssAfter] = after.rss;
  if (backend.GaugeAfter(t.own)) backend.Gauge(call, t.after);
  return t;
}

Napi::Value Pack(Napi::Env env, std::initializer_list<std::pair<const double*, size_t>> parts) {
  size_t total = 0;
  for (const auto& p : parts) total += p.second;
  Napi::Float64Array array = Napi::Float64Array::New(env, total);
  double* at = array.Data();
  for (const auto& p : parts) {
    if (p.second > 0) memcpy(at, p.first, p.second * sizeof(double));
    at += p.second;
  }
  return array;
}

Napi::Value SampleToJs(Napi::Env env, const SampleResult& r) {
  return Pack(env, {{r.common, CommonSample::kCount},
                    {r.own.values.data(), r.own.values.size()},
                    {r.own.tail.data(), r.own.tail.size()}});
}

// A sync sample written into the caller's Float64Array when it fits: returns how many values
// were written. A new ArrayBuffer per sample has its backing store malloc'd and freed by a
// later GC, and thousands of such free chunks made every later mallinfo2() walk (the heart
// of a glibc sample) many times slower.
Napi::Value SampleIntoJs(Napi::Env env, const SampleResult& r, Napi::Value out) {
  const size_t total = CommonSample::kCount + r.own.values.size() + r.own.tail.size();
  if (out.IsTypedArray() && out.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    Napi::Float64Array array = out.As<Napi::Float64Array>();
    if (array.ElementLength() >= total) {
      double* at = array.Data();
      memcpy(at, r.common, sizeof r.common);
      at += CommonSample::kCount;
      if (!r.own.values.empty()) memcpy(at, r.own.values.data(), r.own.values.size() * sizeof(double));
      at += r.own.values.size();
      if (!r.own.tail.empty()) memcpy(at, r.own.tail.data(), r.own.tail.size() * sizeof(double));
      return Napi::Number::New(env, static_cast<double>(total));
    }
  }
  return SampleToJs(env, r);
}

Napi::Value TrimToJs(Napi::Env env, const TrimResult& t) {
  return Pack(env, {{t.common, CommonTrim::kCount},
                    {t.before.values.data(), t.before.values.size()},
                    {t.after.values.data(), t.after.values.size()},
                    {t.own.values.data(), t.own.values.size()}});
}

// Arguments are validated in TypeScript; this only keeps a bad call from crashing.
const Backend& BackendArg(const Napi::CallbackInfo& info) {
  size_t count = 0;
  const Backend* const* table = Table(count);
  if (info.Length() < 1 || !info[0].IsNumber()) throw CodedError(info.Env(), "ERR_INVALID_ARG_TYPE", "backend index");
  int64_t i = info[0].As<Napi::Number>().Int64Value();
  if (i < 0 || static_cast<size_t>(i) >= count) throw CodedError(info.Env(), "ERR_OUT_OF_RANGE", "backend index");
  return *table[i];
}

Call MakeCall(const Napi::CallbackInfo& info, const Backend& backend, size_t index) {
  AddonData& data = Data(info.Env());
  Call call{data.files, index < data.states.size() ? data.states[index] : nullptr, {}};
  // A Float64Array is read in one copy; an array element by element.
  if (info.Length() > 1 && info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    Napi::Float64Array args = info[1].As<Napi::Float64Array>();
    call.args.assign(args.Data(), args.Data() + args.ElementLength());
  } else if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array args = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < args.Length(); i++) {
      Napi::Value v = args.Get(i);
      call.args.push_back(v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : kUnknown);
    }
  }
  return call;
}

size_t IndexOf(const Backend& backend) {
  size_t count = 0;
  const Backend* const* table = Table(count);
  for (size_t i = 0; i < count; i++) {
    if (table[i] == &backend) return i;
  }
  return count;
}

void RequireTrim(Napi::Env env, const Backend& backend) {
  if (!backend.CanTrim()) {
    throw CodedError(env, "ERR_ALLOCATOR_UNSUPPORTED", std::string(backend.Name()) + " does not serve malloc() in this process");
  }
}

Napi::Value SampleSyncJs(const Napi::CallbackInfo& info) {
  const Backend& backend = BackendArg(info);
  Call call = MakeCall(info, backend, IndexOf(backend));
  call.onJsThread = true;
  return SampleIntoJs(info.Env(), TakeSample(backend, call, false), info.Length() > 2 ? info[2] : info.Env().Undefined());
}

Napi::Value SampleAsyncJs(const Napi::CallbackInfo& info) {
  const Backend* backend = &BackendArg(info);
  Call call = MakeCall(info, *backend, IndexOf(*backend));
  return PromiseWorker<SampleResult>::Run(
      info.Env(), "allocatorStats.sample", [backend, call](Failure&) { return TakeSample(*backend, call, true); },
      [](Napi::Env env, SampleResult& r) { return SampleToJs(env, r); });
}

Napi::Value TrimSyncJs(const Napi::CallbackInfo& info) {
  const Backend& backend = BackendArg(info);
  RequireTrim(info.Env(), backend);
  Call call = MakeCall(info, backend, IndexOf(backend));
  call.onJsThread = true;
  return TrimToJs(info.Env(), TakeTrim(backend, call));
}

Napi::Value TrimAsyncJs(const Napi::CallbackInfo& info) {
  const Backend* backend = &BackendArg(info);
  RequireTrim(info.Env(), *backend);
  Call call = MakeCall(info, *backend, IndexOf(*backend));
  return PromiseWorker<TrimResult>::Run(
      info.Env(), "allocatorStats.trim", [backend, call](Failure&) { return TakeTrim(*backend, call); },
      [](Napi::Env env, TrimResult& t) { return TrimToJs(env, t); });
}

Napi::Array NamesToJs(Napi::Env env, FieldNames names) {
  Napi::Array array = Napi::Array::New(env, names.count);
  for (size_t i = 0; i < names.count; i++) array.Set(static_cast<uint32_t>(i), names.names[i]);
  return array;
}

}  // namespace

// The backend table: adding an allocator adds one line here. Detection asks them in this
// order, so glibc (whose counters exist whenever glibc is loaded) comes last.
const std::vector<const Backend*>& Backends() {
  static const std::vector<const Backend*> table = {&JemallocBackend(), &TcmallocBackend(), &MimallocBackend(), &GlibcBackend()};
  return table;
}

void InitBackends(Napi::Env env, Napi::Object exports) {
  AddonData& data = Data(env);
  size_t count = 0;
  const Backend* const* table = Table(count);
  Napi::Array backends = Napi::Array::New(env, count);
  data.states.resize(count);
  for (size_t i = 0; i < count; i++) {
    const Backend& b = *table[i];
    data.states[i] = b.NewState(env);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", b.Name());
    o.Set("sample", NamesToJs(env, b.SampleFields()));
    o.Set("sampleArgs", NamesToJs(env, b.SampleArgs()));
    o.Set("gauge", NamesToJs(env, b.GaugeFields()));
    o.Set("trim", NamesToJs(env, b.TrimFields()));
    o.Set("trimArgs", NamesToJs(env, b.TrimArgs()));
    backends.Set(static_cast<uint32_t>(i), o);
    b.Extras(env, exports);
  }
  Napi::Object wire = Napi::Object::New(env);
  wire.Set("sample", NamesToJs(env, NamesOf<CommonSample>()));
  wire.Set("trim", NamesToJs(env, NamesOf<CommonTrim>()));
  wire.Set("backends", backends);
  exports.Set("wire", wire);
  exports.Set("sampleSync", Napi::Function::New(env, SampleSyncJs, "sampleSync"));
  exports.Set("sample", Napi::Function::New(env, SampleAsyncJs, "sample"));
  exports.Set("trimSync", Napi::Function::New(env, TrimSyncJs, "trimSync"));
  exports.Set("trim", Napi::Function::New(env, TrimAsyncJs, "trim"));
}

std::shared_ptr<BackendState> StateOf(Napi::Env env, const Backend& backend) {
  AddonData& data = Data(env);
  size_t i = IndexOf(backend);
  return i < data.states.size() ? data.states[i] : nullptr;
}

}  // namespace allocstats
