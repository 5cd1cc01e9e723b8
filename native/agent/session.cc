#include "agent/session.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <ctime>
#include <exception>

#include "agent/json.h"
#include "core/detect.h"
#include "core/environment.h"
#include "core/error.h"

namespace allocstats {
namespace agent {

namespace {

// A program the agent is loaded into has no event loop the backends could post to, and is never
// torn down before it exits.
class AgentEnvironment final : public Environment {
 public:
  std::shared_ptr<ThreadTasks> NewThreadTasks(const char*) override { return nullptr; }
  bool OnTeardown(std::function<void()>) override { return false; }
};

// The backends' functions a peer may call: each only reads. Writes (mallctl writes, mallopt,
// option and property setters, release-rate changes) and the bare trims are not reachable from
// the socket: one would change the program's allocation behaviour, and a mallctl write of the
// wrong name can crash it.
struct Readable {
  const char* name;
  size_t maxArgs;
};
constexpr Readable kReadable[] = {
    {"glibcInfo", 0},         {"glibcWire", 0},         {"jemallocInfo", 0},       {"jemallocRead", 2},
    {"jemallocExists", 1},    {"tcmallocProperties", 1}, {"tcmallocReleaseRate", 0}, {"mimallocInfo", 0},
    {"mimallocOptionGet", 1}, {"mimallocStatsText", 0},
};

const Readable* FindReadable(const std::string& name) {
  for (const Readable& r : kReadable) {
    if (name == r.name) return &r;
  }
  return nullptr;
}

std::string Cmdline() {
  std::string out = "[";
  FILE* f = fopen("/proc/self/cmdline", "re");
  if (f != nullptr) {
    std::string arg;
    bool first = true;
    int c;
    size_t total = 0;
    while ((c = fgetc(f)) != EOF && total++ < 64 * 1024) {
      if (c == '\0') {
        if (!first) out += ',';
        AppendQuoted(out, arg);
        first = false;
        arg.clear();
      } else {
        arg += static_cast<char>(c);
      }
    }
    fclose(f);
  }
  return out + "]";
}

void AppendDetection(std::string& out, const Detection& d) {
  auto text = [&](const char* key, const std::string& s, bool nullWhenEmpty) {
    AppendQuoted(out, key);
    out += ':';
    if (nullWhenEmpty && s.empty()) {
      out += "null";
    } else {
      AppendQuoted(out, s);
    }
  };
  out += '{';
  text("name", d.name, false);
  out += ',';
  text("version", d.version, true);
  out += ",\"versionNumbers\":";
  AppendNumbers(out, d.versionNumbers.data(), d.versionNumbers.size());
  out += ',';
  text("versionSuffix", d.versionSuffix, true);
  out += ',';
  text("method", d.method, false);
  out += ',';
  text("library", d.library, true);
  out += ",\"inactive\":[";
  for (size_t i = 0; i < d.inactive.size(); i++) {
    if (i) out += ',';
    out += '{';
    text("name", d.inactive[i].first, false);
    out += ',';
    text("library", d.inactive[i].second, true);
    out += '}';
  }
  out += "]}";
}

void AppendWire(std::string& out) {
  out += "{\"sample\":";
  AppendNames(out, NamesOf<CommonSample>());
  out += ",\"trim\":";
  AppendNames(out, NamesOf<CommonTrim>());
  out += ",\"backends\":[";
  const auto& table = Backends();
  for (size_t i = 0; i < table.size(); i++) {
    const WireNames wire = table[i]->Wire();
    if (i) out += ',';
    out += "{\"name\":";
    AppendQuoted(out, table[i]->Name());
    out += ",\"sample\":";
    AppendNames(out, wire.sample);
    out += ",\"sampleArgs\":";
    AppendNames(out, wire.sampleArgs);
    out += ",\"gauge\":";
    AppendNames(out, wire.gauge);
    out += ",\"trim\":";
    AppendNames(out, wire.trim);
    out += ",\"trimArgs\":";
    AppendNames(out, wire.trimArgs);
    out += '}';
  }
  out += "]}";
}

std::string OkValues(const std::initializer_list<std::pair<const double*, size_t>>& parts) {
  std::string out = "{\"ok\":true,\"values\":[";
  bool first = true;
  for (const auto& p : parts) {
    for (size_t i = 0; i < p.second; i++) {
      if (!first) out += ',';
      first = false;
      AppendNumber(out, p.first[i]);
    }
  }
  return out + "]}";
}

std::string SampleValues(const SampleResult& r) {
  return OkValues({{r.common, CommonSample::kCount}, {r.own.values.data(), r.own.values.size()}, {r.own.tail.data(), r.own.tail.size()}});
}

size_t BackendIndex(const std::vector<std::string>& words) {
  double index = NAN;
  if (words.size() < 2 || !ParseNumber(words[1], index)) {
    throw CodedError("ERR_INVALID_ARG_TYPE", "Expected a backend index after " + words[0], CodedError::Kind::Type);
  }
  if (!(index >= 0) || index != std::floor(index) || index >= static_cast<double>(Backends().size())) {
    throw CodedError("ERR_OUT_OF_RANGE", "backend index out of range", CodedError::Kind::Range);
  }
  return static_cast<size_t>(index);
}

// A word as the parameter's kind asks; throws what the addon's boundary throws.
Value Convert(const Param& param, const std::string* word) {
  double number = NAN;
  const bool isNumber = word != nullptr && ParseNumber(*word, number);
  switch (param.kind) {
    case Param::Kind::String:
      if (word == nullptr) break;
      return Value::String(*word);
    case Param::Kind::Strings: {
      if (word == nullptr) break;
      Value list = Value::Array();
      size_t start = 0;
      while (start <= word->size()) {
        size_t comma = word->find(',', start);
        if (comma == std::string::npos) comma = word->size();
        if (comma > start) list.items.push_back(Value::String(word->substr(start, comma - start)));
        start = comma + 1;
      }
      return list;
    }
    case Param::Kind::Int32:
    case Param::Kind::Int64:
    case Param::Kind::Integer:
      if (!isNumber || std::isnan(number)) break;
      if (number != std::floor(number) || std::fabs(number) > 2147483647.0) {
        throw CodedError("ERR_OUT_OF_RANGE", param.message, CodedError::Kind::Range);
      }
      return Value::Int64(static_cast<int64_t>(number));
    case Param::Kind::OptionalFinite:
      if (word == nullptr) return Value();
      if (!isNumber || std::isnan(number)) break;
      return Value::Number(number);
    case Param::Kind::Any:
      if (word == nullptr) return Value();
      return isNumber ? Value::Number(number) : Value::String(*word);
  }
  throw CodedError("ERR_INVALID_ARG_TYPE", param.message, CodedError::Kind::Type);
}

}  // namespace

std::string ErrorReply(const char* code, const std::string& message) {
  std::string out = "{\"ok\":false,\"code\":";
  AppendQuoted(out, code);
  out += ",\"message\":";
  AppendQuoted(out, message);
  return out + "}";
}

Session::Session() : files_(std::make_shared<ProcFiles>()) {
  AgentEnvironment env;
  for (const Backend* b : Backends()) {
    states_.push_back(b->NewState(env));
    extras_.push_back(b->MakeExtras());
  }
  lastArgs_.resize(Backends().size());
}

std::string Session::Handle(const std::string& line) {
  std::vector<std::string> words;
  try {
    if (!SplitWords(line, words)) return ErrorReply("ERR_AGENT_REQUEST", "a request is printable ASCII words");
    if (words.empty()) return ErrorReply("ERR_AGENT_REQUEST", "empty request");
    const std::string& verb = words[0];
    if (verb == "hello") return Hello();
    if (verb == "sample") return Sample(words);
    if (verb == "trim") return Trim(words);
    if (verb == "call") return CallExtra(words);
    return ErrorReply("ERR_AGENT_REQUEST", "unknown request (hello, sample, trim or call)");
  } catch (const CodedError& e) {
    return ErrorReply(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return ErrorReply("ERR_AGENT_FAILED", "out of memory");
  } catch (const std::exception& e) {
    return ErrorReply("ERR_AGENT_FAILED", e.what());
  } catch (...) {
    return ErrorReply("ERR_AGENT_FAILED", "the request failed");
  }
}

std::string Session::Hello() {
  const Detection& d = DetectAllocator();
  std::string out = "{\"ok\":true,\"pid\":" + std::to_string(getpid()) + ",\"argv\":" + Cmdline() + ",\"detect\":";
  AppendDetection(out, d);
  out += ",\"wire\":";
  AppendWire(out);
  out += ",\"constants\":{";
  bool first = true;
  for (const Extras& list : extras_) {
    for (const Extra& e : list) {
      if (e.kind != Extra::Kind::Constant) continue;
      if (!first) out += ',';
      first = false;
      AppendQuoted(out, e.name);
      out += ':';
      AppendValue(out, e.constant);
    }
  }
  return out + "}}";
}

Call Session::MakeCall(size_t backend, const std::vector<std::string>& words, size_t from, bool sample) {
  Call call;
  call.files = files_;
  call.state = states_[backend];
  const WireNames wire = Backends()[backend]->Wire();
  const size_t count = sample ? wire.sampleArgs.count : wire.trimArgs.count;
  if (words.size() - from > count) throw CodedError("ERR_OUT_OF_RANGE", "too many arguments", CodedError::Kind::Range);
  call.args.assign(count, kUnknown);
  for (size_t i = from; i < words.size(); i++) {
    double v = NAN;
    if (!ParseNumber(words[i], v)) throw CodedError("ERR_INVALID_ARG_TYPE", "arguments are numbers", CodedError::Kind::Type);
    call.args[i - from] = v;
  }
  return call;
}

std::string Session::Sample(const std::vector<std::string>& words) {
  DetectAllocator();
  const size_t index = BackendIndex(words);
  const Call call = MakeCall(index, words, 2, true);
  lastArgs_[index] = call.args;
  return SampleValues(TakeSample(*Backends()[index], call, true));
}

std::string Session::Trim(const std::vector<std::string>& words) {
  DetectAllocator();
  const size_t index = BackendIndex(words);
  const Backend& backend = *Backends()[index];
  RequireTrim(backend);
  const Call call = MakeCall(index, words, 2, false);
  const TrimResult t = TakeTrim(backend, call);
  return OkValues({{t.common, CommonTrim::kCount},
                   {t.before.values.data(), t.before.values.size()},
                   {t.after.values.data(), t.after.values.size()},
                   {t.own.values.data(), t.own.values.size()}});
}

std::string Session::CallExtra(const std::vector<std::string>& words) {
  if (words.size() < 2) throw CodedError("ERR_INVALID_ARG_TYPE", "Expected a function name after call", CodedError::Kind::Type);
  const Readable* readable = FindReadable(words[1]);
  if (readable == nullptr) throw CodedError("ERR_AGENT_REQUEST", "no such read-only function: " + words[1]);
  if (words.size() - 2 > readable->maxArgs) throw CodedError("ERR_OUT_OF_RANGE", "too many arguments", CodedError::Kind::Range);
  DetectAllocator();
  for (size_t b = 0; b < extras_.size(); b++) {
    for (const Extra& e : extras_[b]) {
      if (e.name != words[1]) continue;
      std::string out = "{\"ok\":true,\"value\":";
      if (e.kind == Extra::Kind::Constant) {
        AppendValue(out, e.constant);
        return out + "}";
      }
      if (e.require) e.require();
      ExtraCall call;
      call.state = states_[b];
      call.files = files_;
      for (size_t i = 0; i < e.params.size(); i++) {
        const std::string* word = i + 2 < words.size() ? &words[i + 2] : nullptr;
        call.args.push_back(Convert(e.params[i], word));
      }
      AppendValue(out, e.run(call));
      return out + "}";
    }
  }
  throw CodedError("ERR_AGENT_REQUEST", "this build has no function " + words[1]);
}

std::string Session::ExitRecord(long pid) {
  const Detection& d = DetectAllocator();
  const auto& table = Backends();
  size_t index = table.size();
  for (size_t i = 0; i < table.size(); i++) {
    if (table[i] == d.backend) index = i;
  }
  std::string out = "{\"type\":\"agent-exit\",\"pid\":" + std::to_string(pid) + ",\"time\":";
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  AppendNumber(out, static_cast<double>(now.tv_sec) * 1000 + static_cast<double>(now.tv_nsec / 1000000));
  out += ",\"backend\":";
  if (index == table.size()) return out + "null}";
  out += std::to_string(index) + ",\"reply\":";
  // With the arguments of the peer's last sample, so that the last figures are read as the others
  // were; zeros (measure everything afresh) when it asked for none yet.
  Call call = MakeCall(index, {}, 0, true);
  if (!lastArgs_[index].empty()) call.args = lastArgs_[index];
  else std::fill(call.args.begin(), call.args.end(), 0.0);
  return out + SampleValues(TakeSample(*table[index], call, true)) + "}";
}

}  // namespace agent
}  // namespace allocstats
