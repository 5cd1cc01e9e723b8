// glibc malloc as a backend: its sample (counters, arena residency, malloc_info's free-chunk
// histogram), its measured trim (malloc_trim) and its extras.
#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "core/backend.h"
#include "core/clock.h"
#include "core/detect.h"
#include "core/error.h"
#include "core/procfs.h"
#include "glibc/arenas.h"
#include "glibc/counters.h"
#include "glibc/malloc-info.h"
#include "glibc/symbols.h"

namespace allocstats {

namespace {

// mallocInfo: 0 not asked, 1 read (its rows are the record's tail), 2 unavailable.
#define ARENA_FIELDS(X) X(arenasOk) X(mainMapped) X(mainResident) X(threadMapped) X(threadResident) X(threadTail) X(breakRoom) X(heaps) X(arenas)
// residencyAgeNs: how old the arena residency is (0: measured by this sample).
#define SAMPLE_FIELDS(X) MALLINFO_RECORD(X) ARENA_FIELDS(X) X(matches) X(scans) X(mallocInfo) X(residencyAgeNs)
ALLOCSTATS_DECLARE_FIELDS(SampleField, SAMPLE_FIELDS);
#define GAUGE_FIELDS(X) X(arenasOk) X(mainResident) X(threadResident)
ALLOCSTATS_DECLARE_FIELDS(GaugeField, GAUGE_FIELDS);
// residencyMaxAgeNs: a sample may reuse arena residency this old (0: always measure).
#define SAMPLE_ARGS(X) X(releasable) X(residencyMaxAgeNs)
ALLOCSTATS_DECLARE_FIELDS(SampleArg, SAMPLE_ARGS);
// residencyMaxAgeNs: a trim may start from arena residency this old instead of gauging after.
#define TRIM_ARGS(X) X(pad) X(residencyMaxAgeNs)
ALLOCSTATS_DECLARE_FIELDS(TrimArg, TRIM_ARGS);
// The residency kept from a recent measurement when the trim started (unknown if none was
// recent enough: then the residency is gauged after the trim instead).
#define TRIM_FIELDS(X) X(keptMainResident) X(keptThreadResident) X(keptAgeNs)
ALLOCSTATS_DECLARE_FIELDS(TrimField, TRIM_FIELDS);

bool Flag(double v) { return v == v && v != 0; }

// A whole number of bytes from a double that TypeScript already checked; anything else is 0.
size_t Bytes(double v) { return v >= 0 && v <= 9007199254740991.0 ? static_cast<size_t>(v) : 0; }

class Glibc final : public Backend {
 public:
  void Probe(Detection& d) const override {
    if (d.backend != nullptr) return;
    if (const char* glibc = GlibcVersion()) {
      const char* how = "";
      if (GlibcServes(&how)) {
        Claim(d, "glibc", LibraryOf(dlsym(RTLD_DEFAULT, "gnu_get_libc_version")), how);
        d.version = glibc;
      } else {
        d.method = "glibc is loaded but its counters did not move on malloc, and no known allocator claimed it";
      }
    }
  }
  bool ServesNow() const override { return GlibcServes(); }

  const char* Name() const override { return "glibc"; }
  bool Serving() const override { return DetectAllocator().backend == this; }
  bool CanTrim() const override { return Serving() && Api().mallocTrim != nullptr; }
  WireNames Wire() const override { return WireOf<SampleField, SampleArg, TrimField, TrimArg, GaugeField>(); }

  std::shared_ptr<BackendState> NewState(Environment&) const override { return std::make_shared<GlibcState>(); }

  void Sample(const Call& call, Record& out) const override {
    GlibcState& state = static_cast<GlibcState&>(*call.state);
    const bool withMallocInfo = Flag(call.Arg(SampleArg::releasable));
    Mallinfo mi;
    bool counters = false;
    out[SampleField::mallocInfo] = withMallocInfo ? (Api().mallocInfo != nullptr ? 1 : 2) : 0;
    if (withMallocInfo && Api().mallocInfo != nullptr) {
      // One walk gives both the counters and the free-chunk histogram.
      ParseMallocInfo(MallocInfoXml(), out.tail);
      counters = MallinfoFromRows(out.tail, mi);
    }
    if (!counters) counters = GlibcMallinfo(mi);
    PutMallinfo(&out[0], mi);
    if (!counters) return;
    ArenaMeasure ar;
    double ageNs = 0;
    if (!ReuseArenas(state, mi, call.Arg(SampleArg::residencyMaxAgeNs), ar, ageNs)) {
      MeasureArenas(state, call.files.get(), &mi, ar);
    }
    out[SampleField::residencyAgeNs] = ageNs;
    out[SampleField::arenasOk] = ar.ok ? 1 : 0;
    if (ar.ok) {
      out[SampleField::mainMapped] = ar.mainMapped, out[SampleField::mainResident] = ar.mainResident;
      out[SampleField::threadMapped] = ar.threadMapped, out[SampleField::threadResident] = ar.threadResident;
      out[SampleField::threadTail] = ar.threadTail;
      out[SampleField::breakRoom] = ar.breakRoom;
      out[SampleField::heaps] = ar.heaps, out[SampleField::arenas] = ar.arenas;
    }
    out[SampleField::matches] = ar.matchesMallinfo ? 1 : 0;
    out[SampleField::scans] = static_cast<double>(ar.scans);
  }

  // Residency only: mincore() and the heap headers take no arena lock, while a count of the
  // allocated bytes would walk every free chunk under each arena's lock and stall every
  // thread that allocates meanwhile, for many times what malloc_trim() itself takes.
  void Gauge(const Call& call, Record& out) const override {
    GlibcState& state = static_cast<GlibcState&>(*call.state);
    ArenaMeasure ar;
    MeasureArenas(state, call.files.get(), nullptr, ar);
    out[GaugeField::arenasOk] = ar.ok ? 1 : 0;
    if (ar.ok) out[GaugeField::mainResident] = ar.mainResident, out[GaugeField::threadResident] = ar.threadResident;
  }

  // Residency costs a page-table walk of every arena region (a third of a millisecond for a
  // few hundred MB), many times malloc_trim() itself: it is gauged once, after the trim, and
  // the residency before is that plus what RSS says the trim released.
  bool GaugeBefore() const override { return false; }
  // ... unless a measurement recent enough was kept (Trim() reports it): then none is.

  int Trim(const Call& call, Record& out) const override {
    GlibcState& state = static_cast<GlibcState&>(*call.state);
    {
      std::lock_guard<std::mutex> lock(state.mutex);
      const GlibcState::Kept& k = state.kept;
      const double age = NowNs() - k.at;
      // A recent measurement of arenas that kept their size stands for the residency before:
      // a trim only gives pages back, and RSS says how many, so no page-table walk is needed.
      if (k.valid && age <= call.Arg(TrimArg::residencyMaxAgeNs) && k.brk == reinterpret_cast<uintptr_t>(sbrk(0))) {
        out[TrimField::keptMainResident] = k.mainResident;
        out[TrimField::keptThreadResident] = k.threadResident;
        out[TrimField::keptAgeNs] = age;
      }
      // It stops describing the arenas as pages go back.
      state.kept.valid = false;
    }
    return Api().mallocTrim(Bytes(call.Arg(TrimArg::pad)));
  }

  bool GaugeAfter(const Record& own) const override { return std::isnan(own.values[TrimField::keptAgeNs]); }

  Extras MakeExtras() const override;
};

Value MallinfoValue(const Mallinfo& mi) {
  if (mi.source == nullptr) return Value::Null();
  std::vector<double> record(MallinfoRecord::kCount);
  PutMallinfo(record.data(), mi);
  return Value::Floats(std::move(record));
}

Value Mallopt(const ExtraCall& call) {
  return Value::Bool(Api().mallopt(static_cast<int>(call.args[0].int64), static_cast<int>(call.args[1].int64)) == 1);
}

Value Info(const ExtraCall&) {
  const GlibcApi& api = Api();
  Value o = Value::Object();
  o.Set("version", Value::StringOrNull(api.version != nullptr ? api.version() : nullptr));
  o.Set("mallinfo2", Value::Bool(api.mallinfo2 != nullptr));
  o.Set("mallinfo", Value::Bool(api.mallinfo != nullptr));
  o.Set("mallocTrim", Value::Bool(api.mallocTrim != nullptr));
  o.Set("mallocInfo", Value::Bool(api.mallocInfo != nullptr));
  o.Set("mallopt", Value::Bool(api.mallopt != nullptr));
  o.Set("pageSize", Value::Number(static_cast<double>(PageSize())));
  return o;
}

Value Names(FieldNames names) { return Value::Strings(names.names, names.count); }

Extras Glibc::MakeExtras() const {
  Value wire = Value::Object();
  wire.Set("mallinfo", Names(NamesOf<MallinfoRecord>()));
  wire.Set("mallinfoSources", Names(NamesOf<Source>()));
  wire.Set("mallocInfoRow", Names(NamesOf<Row>()));
  wire.Set("mallocInfoRowKinds", Names(NamesOf<RowKind>()));
  const char* const twoIntegers = "mallopt(param, value) takes two integers";
  Extras extras;
  extras.push_back({"glibcInfo", Extra::Kind::Sync, {}, nullptr, Info, {}});
  extras.push_back({"glibcMallopt", Extra::Kind::Sync, {{Param::Kind::Int32, twoIntegers}, {Param::Kind::Int32, twoIntegers}},
                    [] {
                      if (Api().mallopt == nullptr) {
                        throw CodedError("ERR_ALLOCATOR_UNSUPPORTED", "mallopt() is not available in this process");
                      }
                    },
                    Mallopt, {}});
  extras.push_back({"glibcWire", Extra::Kind::Constant, {}, nullptr, nullptr, wire});
  extras.push_back({"glibcMallinfo", Extra::Kind::Pair, {}, nullptr,
                    [](const ExtraCall&) {
                      Mallinfo mi;
                      GlibcMallinfo(mi);
                      return MallinfoValue(mi);
                    },
                    {}});
  // The bare call, unmeasured: the baseline `npm run bench` holds trim() against.
  extras.push_back({"glibcMallocTrim", Extra::Kind::Pair, {}, nullptr,
                    [](const ExtraCall&) {
                      return Value::Number(Api().mallocTrim != nullptr ? double(Api().mallocTrim(0)) : kUnknown);
                    },
                    {}});
  extras.push_back({"glibcMallocInfo", Extra::Kind::Pair, {}, nullptr,
                    [](const ExtraCall&) {
                      if (Api().mallocInfo == nullptr) return Value::Null();
                      std::vector<double> rows;
                      ParseMallocInfo(MallocInfoXml(), rows);
                      return Value::Floats(std::move(rows));
                    },
                    {}});
  return extras;
}

}  // namespace

const Backend& GlibcBackend() {
  static const Glibc backend;
  return backend;
}

}  // namespace allocstats
