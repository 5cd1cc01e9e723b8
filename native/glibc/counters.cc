#include "glibc/counters.h"

#include <cstring>

#include "core/detect.h"
#include "glibc/arenas.h"
#include "glibc/symbols.h"

namespace allocstats {

namespace {

double SourceIndex(const char* source) {
  if (source == nullptr) return Source::none;
  if (strcmp(source, "mallinfo2") == 0) return Source::mallinfo2;
  if (strcmp(source, "malloc_info") == 0) return Source::malloc_info;
  return Source::mallinfo;
}

}  // namespace

void PutMallinfo(double* out, const Mallinfo& mi) {
  out[MallinfoRecord::source] = SourceIndex(mi.source);
#define PUT(name) out[MallinfoRecord::name] = static_cast<double>(mi.name);
  MALLINFO_FIELDS(PUT)
#undef PUT
}

bool GlibcMallinfo(Mallinfo& out) {
  const GlibcApi& api = Api();
  if (api.mallinfo2 != nullptr) {
    Mallinfo2Raw m = api.mallinfo2();
    out.source = "mallinfo2";
    out.arena = m.arena, out.ordblks = m.ordblks, out.smblks = m.smblks, out.hblks = m.hblks;
    out.hblkhd = m.hblkhd, out.usmblks = m.usmblks, out.fsmblks = m.fsmblks;
    out.uordblks = m.uordblks, out.fordblks = m.fordblks, out.keepcost = m.keepcost;
    return true;
  }
  if (api.mallinfo != nullptr) {
    MallinfoRaw m = api.mallinfo();
    // int fields hold the low 32 bits of size_t counters: read them back as unsigned.
    auto u = [](int v) { return static_cast<size_t>(static_cast<unsigned int>(v)); };
    out.source = "mallinfo";
    out.arena = u(m.arena), out.ordblks = u(m.ordblks), out.smblks = u(m.smblks), out.hblks = u(m.hblks);
    out.hblkhd = u(m.hblkhd), out.usmblks = u(m.usmblks), out.fsmblks = u(m.fsmblks);
    out.uordblks = u(m.uordblks), out.fordblks = u(m.fordblks), out.keepcost = u(m.keepcost);
    return true;
  }
  return false;
}

bool GlibcServes(const char** how) {
  // A small block from glibc lands in one of its arenas: checked without taking any arena lock.
  // Only when that fails do glibc's counters decide, each read a walk of every free chunk
  // under each arena's lock (tens of ms on a fragmented heap, while allocating threads wait).
  void* probe = ProbeAllocate(64);
  bool held = GlibcArenaHolds(probe);
  ProbeFree(probe);
  if (held) {
    if (how != nullptr) *how = "a malloc() block lies in a glibc arena";
    return true;
  }
  if (how != nullptr) *how = "mallinfo counters moved on malloc";
  for (int attempt = 0; attempt < 3; attempt++) {
    Mallinfo before, after;
    if (!GlibcMallinfo(before)) return false;
    void* p = ProbeAllocate(kProbeBytes);
    bool ok = GlibcMallinfo(after);
    ProbeFree(p);
    if (!ok) return false;
    // Whether the block came from an arena or from mmap, one of the two counters carries it.
    // Sums stay in size_t: mallinfo() fields may have wrapped.
    size_t used0 = before.uordblks + before.hblkhd;
    size_t used1 = after.uordblks + after.hblkhd;
    if (used1 - used0 >= kProbeBytes && used1 - used0 < (static_cast<size_t>(1) << 40)) return true;
  }
  return false;
}

const char* GlibcVersion() {
  const GlibcApi& api = Api();
  return api.version != nullptr ? api.version() : nullptr;
}

}  // namespace allocstats
