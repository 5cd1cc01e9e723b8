// One interface for every allocator backend (sample, trim, extras), in the manner of
// parcel-bundler/watcher's backend table. What all backends do alike is written once in
// backend.cc: the sync/async N-API pairs, the measured-trim skeleton (RSS from the OS
// before and after, the duration) and the process-wide trim lock. A backend file keeps only
// what differs: its symbols, its fields and its raw calls.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "detect.h"
#include "procfs.h"
#include "wire.h"

namespace allocstats {

// A backend's per-environment state (caches, hooks). Threadpool work holds a shared_ptr, so
// the state outlives an environment torn down while that work runs.
struct BackendState {
  virtual ~BackendState() = default;
};

// Everything a sample or trim needs, captured by value on the JS thread; touches no N-API.
struct Call {
  std::shared_ptr<ProcFiles> files;
  std::shared_ptr<BackendState> state;
  std::vector<double> args;  // the backend's sample or trim arguments, by its declared names
  bool onJsThread = false;   // a Sync call: the environment's JS thread is blocked in it
  double Arg(size_t i) const { return i < args.size() ? args[i] : kUnknown; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* Name() const = 0;
  // Whether this allocator serves malloc() (decided by detection) and its calls are resolved.
  virtual bool Serving() const = 0;
  // Whether trim() has something to call.
  virtual bool CanTrim() const { return Serving(); }

  virtual FieldNames SampleFields() const = 0;
  virtual FieldNames SampleArgs() const = 0;
  virtual FieldNames TrimArgs() const = 0;
  // Read before and after a trim; by default the whole sample. Must be cheap: it runs while
  // the trim lock is held and, for an async trim, while the JS thread keeps allocating.
  virtual FieldNames GaugeFields() const { return SampleFields(); }
  // What the trim call itself reports beyond the common trim fields.
  virtual FieldNames TrimFields() const = 0;

  virtual std::shared_ptr<BackendState> NewState(Napi::Env env) const { return nullptr; }

  // Fill `out` (sized to SampleFields(); every value starts unknown). Any thread.
  virtual void Sample(const Call& call, Record& out) const = 0;
  virtual void Gauge(const Call& call, Record& out) const { Sample(call, out); }
  // Whether to gauge before the trim too (the record's `before` stays unknown otherwise).
  virtual bool GaugeBefore() const { return true; }
  // Whether to gauge after the trim, given what the trim call reported (the record's `after`
  // stays unknown otherwise: the trim's own fields then carry what stands for it).
  virtual bool GaugeAfter(const Record& own) const { return true; }
  // The raw release; `out` is sized to TrimFields(). Returns the allocator's result code.
  virtual int Trim(const Call& call, Record& out) const = 0;
  // A release that must then wait for other threads: Trim()'s work runs under the trim lock,
  // and the returned wait (if any) after it is released, so that no thread holds the
  // process-wide lock while it waits for another JS thread (which may itself wait for it).
  using Wait = std::function<void(Record& out)>;
  virtual Wait StartTrim(const Call& call, Record& out, int& result) const {
    result = Trim(call, out);
    return nullptr;
  }

  // Detection, once per process, in table order: claims `d` (sets d.backend to this and fills
  // name, method, version) when this allocator serves malloc() and no backend before it did,
  // or lists it in d.inactive when its symbols are present but it does not serve malloc().
  // Runs inside DetectAllocator(): must not call it (nor Serving()).
  virtual void Probe(Detection& d) const {}

  // Functions only this allocator has (mallctl, mallopt, options...).
  virtual void Extras(Napi::Env env, Napi::Object exports) const {}
};

// Each allocator file defines one of these; the table in backend.cc lists them.
const Backend& GlibcBackend();
const Backend& JemallocBackend();
const Backend& TcmallocBackend();
const Backend& MimallocBackend();

// The backend table, in detection order.
const std::vector<const Backend*>& Backends();

// This environment's state of `backend` (for its extras).
std::shared_ptr<BackendState> StateOf(Napi::Env env, const Backend& backend);

template <typename S>
std::shared_ptr<S> StateAs(Napi::Env env, const Backend& backend) {
  return std::static_pointer_cast<S>(StateOf(env, backend));
}

// An extra that may walk the allocator: `name` on the threadpool (a Promise) and `nameSync`
// on the JS thread, from one `work` (which touches no N-API) and one `convert`.
template <typename Result>
void ExportPair(Napi::Env env, Napi::Object exports, const std::string& name, std::function<Result()> work,
                std::function<Napi::Value(Napi::Env, Result&)> convert) {
  exports.Set(name + "Sync", Napi::Function::New(
                                 env,
                                 [work, convert](const Napi::CallbackInfo& info) -> Napi::Value {
                                   Result r = work();
                                   return convert(info.Env(), r);
                                 },
                                 name + "Sync"));
  const std::string resource = "allocatorStats." + name;
  exports.Set(name, Napi::Function::New(
                        env,
                        [work, convert, resource](const Napi::CallbackInfo& info) -> Napi::Value {
                          return PromiseWorker<Result>::Run(
                              info.Env(), resource.c_str(), [work](Failure&) { return work(); }, convert);
                        },
                        name));
}

// Registers the generic entry points (sample/trim, sync and async) and the field names,
// each backend's state and extras.
void InitBackends(Napi::Env env, Napi::Object exports);

}  // namespace allocstats
