// One interface for every allocator backend (sample, trim, extras), in the manner of
// parcel-bundler/watcher's backend table, and no N-API: plain structs in, wire records out.
// What all backends do alike is written once in backend.cc: the backend table, the
// measured-trim skeleton (RSS from the OS before and after, the duration) and the
// process-wide trim lock. A backend file keeps only what differs: its symbols, its fields and
// its raw calls.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/detect.h"
#include "core/environment.h"
#include "core/extra.h"
#include "core/procfs.h"
#include "core/wire.h"

namespace allocstats {

// A backend's per-environment state (caches, hooks). Threadpool work holds a shared_ptr, so
// the state outlives an environment torn down while that work runs.
struct BackendState {
  virtual ~BackendState() = default;
};

// Everything a sample or trim needs, captured by value on the calling thread.
struct Call {
  std::shared_ptr<ProcFiles> files;
  std::shared_ptr<BackendState> state;
  std::vector<double> args;  // the backend's sample or trim arguments, by its declared names
  bool onJsThread = false;   // a Sync call: the environment's JS thread is blocked in it
  double Arg(size_t i) const { return i < args.size() ? args[i] : kUnknown; }
};

// The names of a backend's records and arguments, declared once by its field lists.
struct WireNames {
  FieldNames sample, sampleArgs, gauge, trim, trimArgs;
};

// `Gauge` defaults to the whole sample.
template <typename Sample, typename SampleArgs, typename Trim, typename TrimArgs, typename Gauge = Sample>
constexpr WireNames WireOf() {
  return WireNames{NamesOf<Sample>(), NamesOf<SampleArgs>(), NamesOf<Gauge>(), NamesOf<Trim>(), NamesOf<TrimArgs>()};
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* Name() const = 0;
  // Whether this allocator serves malloc() (decided by detection) and its calls are resolved.
  virtual bool Serving() const = 0;
  // Whether trim() has something to call.
  virtual bool CanTrim() const { return Serving(); }

  // The gauge is read before and after a trim. Must be cheap: it runs while the trim lock is
  // held and, for an async trim, while the JS thread keeps allocating.
  virtual WireNames Wire() const = 0;

  // One per environment that loads the backend; `env` is valid during this call only.
  virtual std::shared_ptr<BackendState> NewState(Environment& env) const { return nullptr; }

  // Fill `out` (sized to the sample's fields; every value starts unknown). Any thread.
  virtual void Sample(const Call& call, Record& out) const = 0;
  virtual void Gauge(const Call& call, Record& out) const { Sample(call, out); }
  // Whether to gauge before the trim too (the record's `before` stays unknown otherwise).
  virtual bool GaugeBefore() const { return true; }
  // Whether to gauge after the trim, given what the trim call reported (the record's `after`
  // stays unknown otherwise: the trim's own fields then carry what stands for it).
  virtual bool GaugeAfter(const Record& own) const { return true; }
  // The raw release; `out` is sized to the trim's fields. Returns the allocator's result code.
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
  // This allocator's own evidence that it serves malloc(), usable before detection decided
  // (another backend's probe may ask it). False when it has none.
  virtual bool ServesNow() const { return false; }

  // Functions only this allocator has (mallctl, mallopt, options...).
  virtual Extras MakeExtras() const { return {}; }

 protected:
  // Claims the detection for this backend.
  void Claim(Detection& d, const char* name, std::string library, std::string method) const;
};

// Each allocator folder defines one of these; the table in backend.cc lists them.
const Backend& GlibcBackend();
const Backend& JemallocBackend();
const Backend& TcmallocBackend();
const Backend& MimallocBackend();

// The backend table, in detection order.
const std::vector<const Backend*>& Backends();

#define COMMON_SAMPLE_FIELDS(X) X(serving) X(costNs) X(rss) X(rssAnon) X(rssFile) X(rssShmem) X(swap)
ALLOCSTATS_DECLARE_FIELDS(CommonSample, COMMON_SAMPLE_FIELDS);
#define COMMON_TRIM_FIELDS(X) X(result) X(durationNs) X(rssBefore) X(rssAfter)
ALLOCSTATS_DECLARE_FIELDS(CommonTrim, COMMON_TRIM_FIELDS);

// A sample as it crosses: the common fields, then the backend's own (and its tail).
struct SampleResult {
  double common[CommonSample::kCount];
  Record own;
};

// A trim as it crosses: the common fields, the gauge before and after, the trim's own fields.
struct TrimResult {
  double common[CommonTrim::kCount];
  Record before, after, own;
};

// `full`: /proc/self/status (every process field) rather than statm (rss and rssAnon, at a
// seventh of the cost): the JS thread reads statm, the threadpool can afford status.
SampleResult TakeSample(const Backend& backend, const Call& call, bool full);
// ERR_ALLOCATOR_UNSUPPORTED: the allocator `name` has nothing to call in this process.
[[noreturn]] void ThrowNotServing(const char* name);
// The measured trim. Throws ERR_ALLOCATOR_UNSUPPORTED when the backend has nothing to call.
void RequireTrim(const Backend& backend);
TrimResult TakeTrim(const Backend& backend, const Call& call);

}  // namespace allocstats
