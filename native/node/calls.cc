// The entry points every backend shares: detection, the process's memory, and sample and trim
// (each a sync/async pair) packed into Float64Arrays whose fields the wire names; and the one
// process setting the CLI needs that Node lacks (no core dumps).
#include <napi.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/backend.h"
#include "core/detect.h"
#include "core/procfs.h"
#include "node/addon-data.h"
#include "node/errors.h"
#include "node/promise-worker.h"

namespace allocstats {

namespace {

Napi::Value StringOrNull(Napi::Env env, const std::string& s) { return s.empty() ? env.Null() : Napi::String::New(env, s); }

Napi::Value DetectJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Detection& d = DetectAllocator();
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", d.name);
  result.Set("version", StringOrNull(env, d.version));
  Napi::Array numbers = Napi::Array::New(env, d.versionNumbers.size());
  for (size_t i = 0; i < d.versionNumbers.size(); i++) numbers.Set(static_cast<uint32_t>(i), d.versionNumbers[i]);
  result.Set("versionNumbers", numbers);
  result.Set("versionSuffix", StringOrNull(env, d.versionSuffix));
  result.Set("method", d.method);
  result.Set("library", StringOrNull(env, d.library));
  Napi::Array inactive = Napi::Array::New(env, d.inactive.size());
  for (size_t i = 0; i < d.inactive.size(); i++) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", d.inactive[i].first);
    entry.Set("library", StringOrNull(env, d.inactive[i].second));
    inactive.Set(static_cast<uint32_t>(i), entry);
  }
  result.Set("inactive", inactive);
  return result;
}

// Sizes cross as doubles: exact up to 2^53 bytes (8 PiB). NaN (or -1) means unknown: null.
Napi::Value SizeOrNull(Napi::Env env, double value) {
  if (!(value >= 0)) return env.Null();
  return Napi::Number::New(env, value);
}

// An unreadable /proc/self/status (a sandbox, a mount namespace) gives nulls, like every
// backend's sample: the caller says why.
Napi::Value ProcessMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ProcessMemory memory;
  if (!ReadProcessStatus(Data(env).files.get(), memory)) memory = ProcessMemory();
  Napi::Object result = Napi::Object::New(env);
  result.Set("rss", SizeOrNull(env, memory.rss));
  result.Set("rssAnon", SizeOrNull(env, memory.rssAnon));
  result.Set("rssFile", SizeOrNull(env, memory.rssFile));
  result.Set("rssShmem", SizeOrNull(env, memory.rssShmem));
  result.Set("swap", SizeOrNull(env, memory.swap));
  return result;
}

using Part = std::pair<const double*, size_t>;

size_t Total(std::initializer_list<Part> parts) {
  size_t total = 0;
  for (const Part& p : parts) total += p.second;
  return total;
}

void CopyParts(double* at, std::initializer_list<Part> parts) {
  for (const Part& p : parts) {
    if (p.second > 0) memcpy(at, p.first, p.second * sizeof(double));
    at += p.second;
  }
}

Napi::Value Pack(Napi::Env env, std::initializer_list<Part> parts) {
  Napi::Float64Array array = Napi::Float64Array::New(env, Total(parts));
  CopyParts(array.Data(), parts);
  return array;
}

// A sync sample is written into the caller's Float64Array when it fits: returns how many values
// were written. A new ArrayBuffer per sample has its backing store malloc'd and freed by a
// later GC, and thousands of such free chunks made every later mallinfo2() walk (the heart
// of a glibc sample) many times slower.
Napi::Value SampleToJs(Napi::Env env, const SampleResult& r, Napi::Value out = Napi::Value()) {
  const std::initializer_list<Part> parts = {{r.common, CommonSample::kCount},
                                             {r.own.values.data(), r.own.values.size()},
                                             {r.own.tail.data(), r.own.tail.size()}};
  const size_t total = Total(parts);
  if (!out.IsEmpty() && out.IsTypedArray() && out.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    Napi::Float64Array array = out.As<Napi::Float64Array>();
    if (array.ElementLength() >= total) {
      CopyParts(array.Data(), parts);
      return Napi::Number::New(env, static_cast<double>(total));
    }
  }
  return Pack(env, parts);
}

Napi::Value TrimToJs(Napi::Env env, const TrimResult& t) {
  return Pack(env, {{t.common, CommonTrim::kCount},
                    {t.before.values.data(), t.before.values.size()},
                    {t.after.values.data(), t.after.values.size()},
                    {t.own.values.data(), t.own.values.size()}});
}

// A number as JS prints it, for messages (std::to_string says "nan", "inf" and "1.500000").
std::string NumberText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char text[32];
  snprintf(text, sizeof text, "%.17g", d);
  return text;
}

// Arguments are validated in TypeScript; this only keeps a bad call from crashing or from
// silently meaning something else: an index that is no index (NaN and ±Infinity would convert
// to 0, a fraction would be cut), and more arguments than the backend declares (a sparse array
// of length 2^32 - 1 would be copied element by element). Arguments are read as numbers
// (anything else unknown).
size_t BackendArg(const Napi::CallbackInfo& info) {
  const size_t count = Backends().size();
  const std::string expected = "Expected a backend index from 0 to " + std::to_string(count - 1) + " but received ";
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw JsError(info.Env(), "ERR_INVALID_ARG_TYPE", expected + (info.Length() < 1 ? "nothing" : "a value that is not a number"),
                  CodedError::Kind::Type);
  }
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d < static_cast<double>(count) && d == std::floor(d))) {
    throw JsError(info.Env(), "ERR_OUT_OF_RANGE", expected + NumberText(d), CodedError::Kind::Range);
  }
  return static_cast<size_t>(d);
}

enum class Action { Sample, Trim };

Call MakeCall(const Napi::CallbackInfo& info, size_t index, Action action, bool onJsThread) {
  AddonData& data = Data(info.Env());
  Call call{data.files, index < data.states.size() ? data.states[index] : nullptr, {}, onJsThread};
  const Backend& backend = *Backends()[index];
  const WireNames wire = backend.Wire();
  const size_t declared = action == Action::Sample ? wire.sampleArgs.count : wire.trimArgs.count;
  auto checkLength = [&](size_t length) {
    if (length <= declared) return;
    throw JsError(info.Env(), "ERR_OUT_OF_RANGE",
                  std::string("Expected at most ") + std::to_string(declared) + " " + (action == Action::Sample ? "sample" : "trim") +
                      " arguments for the " + backend.Name() + " backend but received " + std::to_string(length),
                  CodedError::Kind::Range);
  };
  // A Float64Array is read in one copy; an array element by element.
  if (info.Length() > 1 && info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    Napi::Float64Array args = info[1].As<Napi::Float64Array>();
    checkLength(args.ElementLength());
    call.args.assign(args.Data(), args.Data() + args.ElementLength());
  } else if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array args = info[1].As<Napi::Array>();
    checkLength(args.Length());
    // Bounded by `declared` too: an element's getter may lengthen the array meanwhile.
    for (uint32_t i = 0; i < args.Length() && i < declared; i++) {
      Napi::Value v = args.Get(i);
      call.args.push_back(v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : kUnknown);
    }
  }
  return call;
}

Napi::Value SampleSyncJs(const Napi::CallbackInfo& info) {
  const size_t index = BackendArg(info);
  return Guarded(info.Env(), [&] {
    Call call = MakeCall(info, index, Action::Sample, true);
    return SampleToJs(info.Env(), TakeSample(*Backends()[index], call, false), info.Length() > 2 ? info[2] : info.Env().Undefined());
  });
}

Napi::Value SampleAsyncJs(const Napi::CallbackInfo& info) {
  const size_t index = BackendArg(info);
  const Backend* backend = Backends()[index];
  return Guarded(info.Env(), [&] {
    Call call = MakeCall(info, index, Action::Sample, false);
    return PromiseWorker<SampleResult>::Run(
        info.Env(), "allocatorStats.sample", [backend, call] { return TakeSample(*backend, call, true); },
        [](Napi::Env env, SampleResult& r) { return SampleToJs(env, r); });
  });
}

Napi::Value TrimSyncJs(const Napi::CallbackInfo& info) {
  const size_t index = BackendArg(info);
  const Backend& backend = *Backends()[index];
  return Guarded(info.Env(), [&] {
    RequireTrim(backend);
    Call call = MakeCall(info, index, Action::Trim, true);
    return TrimToJs(info.Env(), TakeTrim(backend, call));
  });
}

Napi::Value TrimAsyncJs(const Napi::CallbackInfo& info) {
  const size_t index = BackendArg(info);
  const Backend* backend = Backends()[index];
  return Guarded(info.Env(), [&] {
    RequireTrim(*backend);
    Call call = MakeCall(info, index, Action::Trim, false);
    return PromiseWorker<TrimResult>::Run(
        info.Env(), "allocatorStats.trim", [backend, call] { return TakeTrim(*backend, call); },
        [](Napi::Env env, TrimResult& t) { return TrimToJs(env, t); });
  });
}

Napi::Array NamesToJs(Napi::Env env, FieldNames names) {
  Napi::Array array = Napi::Array::New(env, names.count);
  for (size_t i = 0; i < names.count; i++) array.Set(static_cast<uint32_t>(i), names.names[i]);
  return array;
}

// RLIMIT_CORE to 0 (soft and hard) for this process, as timeout(1) does before it raises its
// program's signal on itself: dying of SIGSEGV then leaves no core of Node. Whether it was set.
Napi::Value DisableCoreDumpsJs(const Napi::CallbackInfo& info) {
  const struct rlimit none = {0, 0};
  return Napi::Boolean::New(info.Env(), setrlimit(RLIMIT_CORE, &none) == 0);
}

}  // namespace

void InitProcessCalls(Napi::Env env, Napi::Object exports) {
  exports.Set("detect", Napi::Function::New(env, DetectJs, "detect"));
  exports.Set("processMemory", Napi::Function::New(env, ProcessMemoryJs, "processMemory"));
  exports.Set("disableCoreDumps", Napi::Function::New(env, DisableCoreDumpsJs, "disableCoreDumps"));
}

void InitSampleTrim(Napi::Env env, Napi::Object exports) {
  const auto& table = Backends();
  Napi::Array backends = Napi::Array::New(env, table.size());
  for (size_t i = 0; i < table.size(); i++) {
    const WireNames wire = table[i]->Wire();
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", table[i]->Name());
    o.Set("sample", NamesToJs(env, wire.sample));
    o.Set("sampleArgs", NamesToJs(env, wire.sampleArgs));
    o.Set("gauge", NamesToJs(env, wire.gauge));
    o.Set("trim", NamesToJs(env, wire.trim));
    o.Set("trimArgs", NamesToJs(env, wire.trimArgs));
    backends.Set(static_cast<uint32_t>(i), o);
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

}  // namespace allocstats
