// The native core and the allocator backends without Node: detection, a sample and a trim
// through the backend table, printed as one JSON object for test/core/native-core.test.ts.
// Built from binding.gyp's sources minus native/node/, with no Node or node-addon-api headers.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "core/detect.h"
#include "core/environment.h"
#include "core/procfs.h"

using namespace allocstats;

namespace {

// A program without an event loop: nothing runs on "its thread" later, and it is never torn down.
class PlainEnvironment final : public Environment {
 public:
  std::shared_ptr<ThreadTasks> NewThreadTasks(const char*) override { return nullptr; }
  bool OnTeardown(std::function<void()>) override { return false; }
};

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Number(double v) {
  if (std::isnan(v)) return "null";
  char buffer[64];
  snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

// A record by its declared names.
std::string Fields(const char* const* names, const double* values, size_t count) {
  std::string out = "{";
  for (size_t i = 0; i < count; i++) out += (i ? "," : "") + Quote(names[i]) + ":" + Number(values[i]);
  return out + "}";
}

// Resident pages from /proc/self/statm, read here rather than through the core.
double StatmRss() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return NAN;
  unsigned long long size = 0, resident = 0;
  int n = fscanf(f, "%llu %llu", &size, &resident);
  fclose(f);
  return n == 2 ? static_cast<double>(resident) * static_cast<double>(PageSize()) : NAN;
}

// Each thread gets an arena of its own: allocate in it, touch, free, exit.
void ChurnInThreads(int threads) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([] {
      std::vector<char*> blocks;
      for (int i = 0; i < 256; i++) {
        char* p = static_cast<char*>(malloc(64 * 1024));
        for (size_t k = 0; k < 64 * 1024; k += 4096) p[k] = 1;
        blocks.push_back(p);
      }
      for (char* p : blocks) free(p);
    });
  }
  for (std::thread& t : pool) t.join();
}

}  // namespace

int main() {
  ChurnInThreads(4);
  // Many small chunks on the main arena, touched, then freed below a block that stays: they
  // coalesce into free space inside the arena that only a trim gives back.
  const size_t count = 100000, size = 512;
  std::vector<char*> small(count);
  for (size_t i = 0; i < count; i++) {
    small[i] = static_cast<char*>(malloc(size));
    for (size_t k = 0; k < size; k += 64) small[i][k] = 1;
  }
  char* fence = static_cast<char*>(malloc(size));
  fence[0] = 1;
  for (char* p : small) free(p);

  const Detection& d = DetectAllocator();
  const Backend* glibc = nullptr;
  for (const Backend* b : Backends()) {
    if (std::string(b->Name()) == "glibc") glibc = b;
  }
  std::string out = "{\"detected\":" + Quote(d.name) + ",\"method\":" + Quote(d.method) +
                    ",\"version\":" + Quote(d.version) + ",\"servedByTable\":" +
                    (d.backend != nullptr && d.backend == glibc ? "true" : "false");
  if (glibc != nullptr && glibc->Serving()) {
    PlainEnvironment env;
    Call call;
    call.files = std::make_shared<ProcFiles>();
    call.state = glibc->NewState(env);
    const WireNames wire = glibc->Wire();
    // releasable: 1 (malloc_info's rows too), residencyMaxAgeNs: 0 (always measure).
    call.args.assign(wire.sampleArgs.count, 0);
    call.args[0] = 1;
    const double statm = StatmRss();
    SampleResult s = TakeSample(*glibc, call, true);
    out += ",\"statmRss\":" + Number(statm);
    out += ",\"sample\":" + Fields(CommonSample::kNames, s.common, CommonSample::kCount);
    out += ",\"glibc\":" + Fields(wire.sample.names, s.own.values.data(), wire.sample.count);
    out += ",\"mallocInfoRows\":" + Number(static_cast<double>(s.own.tail.size()));
    call.args.assign(wire.trimArgs.count, 0);  // pad 0, no kept residency
    TrimResult t = TakeTrim(*glibc, call);
    out += ",\"trim\":" + Fields(CommonTrim::kNames, t.common, CommonTrim::kCount);
    out += ",\"gaugeAfter\":" + Fields(wire.gauge.names, t.after.values.data(), wire.gauge.count);
  }
  out += "}";
  printf("%s\n", out.c_str());
  free(fence);
  return 0;
}
