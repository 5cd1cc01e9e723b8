// What the agent answers: one request line in, one JSON reply line out, through the same
// backend table, detection and wire records as the addon. A bad request gets an error reply;
// nothing a peer sends reaches undefined behaviour.
//
// Requests (words separated by spaces):
//   hello                      pid, argv, detection, the wire's names, the backends' constants
//   sample <backend> <args…>   a sample: the common fields, the backend's own, its tail
//   trim <backend> <args…>     a measured trim: common fields, gauge before and after, own fields
//   call <extra> <args…>       one of the backends' read-only functions (their info, a mallctl
//                              read, an option read); none that writes
// Replies: {"ok":true,…} or {"ok":false,"code":"ERR_…","message":"…"}.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"

namespace allocstats {
namespace agent {

class Session {
 public:
  Session();
  // Any thread; calls are serialised by the caller.
  std::string Handle(const std::string& line);
  // The sample that states the program's last figures before it exits (the "agent-exit" line).
  std::string ExitRecord(long pid);

 private:
  std::string Hello();
  std::string Sample(const std::vector<std::string>& words);
  std::string Trim(const std::vector<std::string>& words);
  std::string CallExtra(const std::vector<std::string>& words);
  Call MakeCall(size_t backend, const std::vector<std::string>& words, size_t from, bool sample);

  std::shared_ptr<ProcFiles> files_;
  std::vector<std::shared_ptr<BackendState>> states_;
  std::vector<Extras> extras_;
  std::vector<std::vector<double>> lastArgs_;  // per backend: the arguments of the last sample asked for
};

std::string ErrorReply(const char* code, const std::string& message);

}  // namespace agent
}  // namespace allocstats
