// What every backend does alike, written once: the backend table, the measured sample and
// trim and the process-wide trim lock.
#include "core/backend.h"

#include <mutex>

#include "core/clock.h"
#include "core/error.h"

namespace allocstats {

namespace {

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

}  // namespace

// The backend table: adding an allocator adds one line here. Detection asks them in this
// order, so glibc (whose counters exist whenever glibc is loaded) comes last.
const std::vector<const Backend*>& Backends() {
  static const std::vector<const Backend*> table = {
      &JemallocBackend(),
      &TcmallocBackend(),
      &MimallocBackend(),
      &GlibcBackend(),
  };
  return table;
}

void Backend::Claim(Detection& d, const char* name, std::string library, std::string method) const {
  d.backend = this;
  d.name = name;
  d.library = std::move(library);
  d.method = std::move(method);
}

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
  r.own.Reset(backend.Wire().sample.count);
  if (backend.Serving()) backend.Sample(call, r.own);
  r.common[CommonSample::costNs] = NowNs() - start;
  return r;
}

void ThrowNotServing(const char* name) {
  throw CodedError("ERR_ALLOCATOR_UNSUPPORTED", std::string(name) + " does not serve malloc() in this process");
}

void RequireTrim(const Backend& backend) {
  if (!backend.CanTrim()) ThrowNotServing(backend.Name());
}

// RSS from the OS right before and after the allocator's own call.
TrimResult TakeTrim(const Backend& backend, const Call& call) {
  TrimResult t;
  const WireNames wire = backend.Wire();
  t.before.Reset(wire.gauge.count);
  t.after.Reset(wire.gauge.count);
  t.own.Reset(wire.trim.count);
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

}  // namespace allocstats
