// The agent: the backends, detection and wire records of the addon in a library preloaded
// (LD_PRELOAD) into any dynamically linked program, answering over a Unix socket. No Node.
//
// It starts nothing until asked. Loaded into a program whose environment does not ask
// (ALLOCATOR_STATS_AGENT unset), it creates no thread, file or socket, takes itself out of
// the LD_PRELOAD that the program's children inherit, and does nothing else. Asked:
//   ALLOCATOR_STATS_AGENT=1      listen, for `allocator-stats stats/trim/doctor PID`: on
//                                $ALLOCATOR_STATS_AGENT_DIR/agent.<pid>.sock, by default in
//                                $XDG_RUNTIME_DIR/allocator-stats or /tmp/allocator-stats-<uid>
//                                (a 0700 directory of this user's; anything else is refused);
//                                a shell or launcher passes the agent on to what it starts
//   ALLOCATOR_STATS_AGENT=run    set by `allocator-stats run` and `compare`: each process of the
//                                program that is neither a shell or launcher (those pass the
//                                agent on) nor a Node process (those sample themselves) listens
//                                in the run's private directory, says so on the run's sample
//                                file, and writes its last sample there when it begins to exit
//   ALLOCATOR_STATS_AGENT_INHERIT=1  keep the agent in the children's LD_PRELOAD (each child
//                                then listens on its own socket)
// One thread serves the socket (0600; peers of another user are refused, SO_PEERCRED), with
// every signal blocked so that none of the program's signals is delivered to it. After fork()
// the child closes what it inherited and stays silent. The program's allocations are not
// touched: the agent's own thread allocates only while it answers.
#include <dlfcn.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "agent/json.h"
#include "agent/session.h"

// A portable build (glibc-compat.h force-included) binds the thread functions to the versions
// glibc 2.28 has: they moved from libpthread into libc with new default versions in 2.32 and
// 2.34. libpthread is a NEEDED library of the portable agent (binding.gyp), so where it still
// holds them they resolve there, in any program, threaded or not.
#if defined(ALLOCATOR_STATS_GLIBC_BASE)
#if defined(__x86_64__)
#define ALLOCATOR_STATS_SETNAME_VERSION "GLIBC_2.12"
#else
#define ALLOCATOR_STATS_SETNAME_VERSION "GLIBC_2.17"
#endif
__asm__(".symver pthread_create,pthread_create@" ALLOCATOR_STATS_GLIBC_BASE);
__asm__(".symver pthread_sigmask,pthread_sigmask@" ALLOCATOR_STATS_GLIBC_BASE);
__asm__(".symver pthread_attr_setstacksize,pthread_attr_setstacksize@" ALLOCATOR_STATS_GLIBC_BASE);
__asm__(".symver pthread_setname_np,pthread_setname_np@" ALLOCATOR_STATS_SETNAME_VERSION);
#endif

namespace allocstats {
namespace agent {

namespace {

constexpr int kMaxClients = 8;
constexpr size_t kMaxRequest = 4096;

struct Client {
  int fd = -1;
  std::string buffer;
};

// Never destroyed: the program's exit (static destructors, other threads) may run while the
// thread still answers.
struct State {
  bool run = false;  // ALLOCATOR_STATS_AGENT=run
  pid_t owner = 0;   // the process that listens (0: none)
  int listenFd = -1;
  std::string socketPath;
  std::string sampleFile;
  Client clients[kMaxClients];
  std::mutex lock;  // one request, or the exit record, at a time
  Session* session = nullptr;
  std::atomic<bool> exiting{false};
};

State* g = nullptr;

const char* Env(const char* name) {
  const char* v = getenv(name);
  return v != nullptr && v[0] != '\0' ? v : nullptr;
}

std::string OwnPath() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&OwnPath), &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Takes this library out of LD_PRELOAD (entries are separated by spaces or colons): the
// program's children do not load it.
void ForgetInChildren() {
  const char* preload = getenv("LD_PRELOAD");
  if (preload == nullptr) return;
  const std::string own = OwnPath();
  const std::string ownBase = Basename(own);
  char ownReal[PATH_MAX];
  const bool haveReal = !own.empty() && realpath(own.c_str(), ownReal) != nullptr;
  std::string kept, entry;
  const std::string list = std::string(preload) + " ";
  for (char c : list) {
    if (c != ' ' && c != ':') {
      entry += c;
      continue;
    }
    if (entry.empty()) continue;
    char real[PATH_MAX];
    const bool same = entry == own || (haveReal && realpath(entry.c_str(), real) != nullptr && strcmp(real, ownReal) == 0) ||
                      (entry.find('/') == std::string::npos && entry == ownBase);
    if (!same) kept += (kept.empty() ? "" : " ") + entry;
    entry.clear();
  }
  if (kept.empty()) {
    unsetenv("LD_PRELOAD");
  } else {
    setenv("LD_PRELOAD", kept.c_str(), 1);
  }
}

// A Node process samples itself (the package's sampler): its agent stays silent.
bool InNode() { return dlsym(RTLD_DEFAULT, "napi_create_object") != nullptr; }

// Shells and launchers that start the real program: the program they start listens.
bool IsLauncher() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return false;
  exe[n] = '\0';
  static const char* const kLaunchers[] = {"sh",     "dash",    "bash",    "zsh",   "ksh",    "mksh",   "busybox",
                                           "env",    "nohup",   "nice",    "timeout", "stdbuf", "setsid", "taskset",
                                           "chrt",   "ionice",  "time",    "xargs", "sudo",   "su",     "runuser",
                                           "setpriv", "unshare", "flock",   "tini",  "dumb-init", "make", "strace"};
  const std::string base = Basename(exe);
  for (const char* l : kLaunchers) {
    if (base == l) return true;
  }
  return false;
}

void Warn(const char* what, int error) {
  // Only when the environment asked for a listener: say once why there is none.
  char line[512];
  int n = snprintf(line, sizeof line, "allocator-stats agent (pid %d): %s%s%s\n", static_cast<int>(getpid()), what,
                   error ? ": " : "", error ? strerror(error) : "");
  if (n > 0) (void)!write(2, line, static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1);
}

// lstat(). A portable build (the prebuilds) loads on glibc 2.28, where lstat is no symbol of
// libc (it became one in 2.33; before, the headers turned it into __lxstat64): there the kernel
// is asked directly. struct stat is the kernel's on x86_64 and aarch64, the only portable targets.
int StatNoFollow(const char* path, struct stat* st) {
#if defined(ALLOCATOR_STATS_GLIBC_BASE)
  return static_cast<int>(syscall(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
#else
  return lstat(path, st);
#endif
}

// A directory of this user's that nobody else can enter; made when missing.
bool PrivateDirectory(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  struct stat st;
  if (StatNoFollow(dir.c_str(), &st) != 0) return false;
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    errno = EPERM;
    return false;
  }
  return true;
}

std::string DefaultDirectory() {
  if (const char* dir = Env("ALLOCATOR_STATS_AGENT_DIR")) return dir;
  if (const char* runtime = Env("XDG_RUNTIME_DIR")) return std::string(runtime) + "/allocator-stats";
  return "/tmp/allocator-stats-" + std::to_string(geteuid());
}

void AppendLine(const std::string& file, const std::string& line) {
  if (file.empty()) return;
  int fd = open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  std::string out = line + "\n";
  (void)!write(fd, out.data(), out.size());
  close(fd);
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool PeerAllowed(int fd) {
  struct ucred cred;
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return false;
  return cred.uid == geteuid() || cred.uid == 0;
}

std::string Answer(const std::string& line) {
  std::lock_guard<std::mutex> hold(g->lock);
  if (g->exiting) return ErrorReply("ERR_AGENT_EXITING", "the program is exiting");
  if (g->session == nullptr) g->session = new Session();
  return g->session->Handle(line);
}

void CloseClient(Client& c) {
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  c.buffer.clear();
}

void Accept() {
  int fd = accept4(g->listenFd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;
  if (!PeerAllowed(fd)) {
    SendAll(fd, ErrorReply("ERR_AGENT_PEER", "the agent answers only its own user and root") + "\n");
    close(fd);
    return;
  }
  struct timeval timeout = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  for (Client& c : g->clients) {
    if (c.fd < 0) {
      c.fd = fd;
      return;
    }
  }
  SendAll(fd, ErrorReply("ERR_AGENT_BUSY", "too many connections to the agent") + "\n");
  close(fd);
}

void Serve(Client& c) {
  char buffer[2048];
  ssize_t n = recv(c.fd, buffer, sizeof buffer, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    CloseClient(c);
    return;
  }
  c.buffer.append(buffer, static_cast<size_t>(n));
  size_t newline;
  while ((newline = c.buffer.find('\n')) != std::string::npos) {
    std::string line = c.buffer.substr(0, newline);
    c.buffer.erase(0, newline + 1);
    if (!SendAll(c.fd, Answer(line) + "\n")) {
      CloseClient(c);
      return;
    }
  }
  if (c.buffer.size() > kMaxRequest) {
    SendAll(c.fd, ErrorReply("ERR_AGENT_REQUEST", "request longer than 4096 bytes") + "\n");
    CloseClient(c);
  }
}

void* Loop(void*) {
  pthread_setname_np(pthread_self(), "allocstat-agent");  // at most 15 characters
  for (;;) {
    struct pollfd fds[kMaxClients + 1];
    int count = 0;
    fds[count++] = {g->listenFd, POLLIN, 0};
    int which[kMaxClients];
    for (int i = 0; i < kMaxClients; i++) {
      if (g->clients[i].fd < 0) continue;
      which[count - 1] = i;
      fds[count++] = {g->clients[i].fd, POLLIN, 0};
    }
    if (poll(fds, static_cast<nfds_t>(count), -1) < 0) {
      if (errno == EINTR) continue;
      return nullptr;
    }
    for (int k = 1; k < count; k++) {
      if (fds[k].revents != 0) Serve(g->clients[which[k - 1]]);
    }
    if (fds[0].revents & POLLIN) Accept();
  }
}

void ChildAfterFork() {
  if (g == nullptr || g->owner == 0) return;
  // The thread did not come along: close what it served, leave the parent's socket file alone.
  if (g->listenFd >= 0) close(g->listenFd);
  g->listenFd = -1;
  for (Client& c : g->clients) {
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
  }
  g->owner = 0;
}

// Socket files of processes that are gone (killed before they could remove theirs) are removed,
// so the directory does not fill up on a host that restarts its services.
void RemoveStaleSockets(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (struct dirent* e = readdir(d)) {
    char* end = nullptr;
    if (strncmp(e->d_name, "agent.", 6) != 0) continue;
    const long pid = strtol(e->d_name + 6, &end, 10);
    if (pid <= 0 || end == nullptr || strcmp(end, ".sock") != 0) continue;
    if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

bool Listen(const std::string& dir) {
  if (!PrivateDirectory(dir)) {
    Warn(("cannot use the directory " + dir + " for its socket").c_str(), errno);
    return false;
  }
  RemoveStaleSockets(dir);
  const std::string path = dir + "/agent." + std::to_string(getpid()) + ".sock";
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    Warn(("socket path too long: " + path).c_str(), 0);
    return false;
  }
  memcpy(address.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  unlink(path.c_str());  // a socket left by a process of the same pid that died
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || chmod(path.c_str(), 0600) != 0 ||
      listen(fd, 8) != 0) {
    Warn(("cannot listen on " + path).c_str(), errno);
    close(fd);
    return false;
  }
  g->listenFd = fd;
  g->socketPath = path;
  g->owner = getpid();
  pthread_atfork(nullptr, nullptr, ChildAfterFork);

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  const int started = pthread_create(&thread, &attr, Loop, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (started != 0) {
    Warn("cannot start its thread", started);
    close(fd);
    unlink(path.c_str());
    g->listenFd = -1;
    g->owner = 0;
    return false;
  }
  return true;
}

}  // namespace

// The program begins to exit (exit() or a return from main): under `run`, the last sample is
// taken now, before exit handlers and destructors free what the program held.
void BeginExit() {
  if (g == nullptr || g->owner != getpid() || g->exiting.exchange(true)) return;
  std::lock_guard<std::mutex> hold(g->lock);
  if (g->run && !g->sampleFile.empty()) {
    try {
      if (g->session == nullptr) g->session = new Session();
      AppendLine(g->sampleFile, g->session->ExitRecord(getpid()));
    } catch (...) {
      // Exiting anyway: the CLI keeps its last periodic sample.
    }
  }
  unlink(g->socketPath.c_str());
}

void Start() {
  const char* mode = Env("ALLOCATOR_STATS_AGENT");
  const bool inherit = Env("ALLOCATOR_STATS_AGENT_INHERIT") != nullptr && strcmp(getenv("ALLOCATOR_STATS_AGENT_INHERIT"), "1") == 0;
  const bool run = mode != nullptr && strcmp(mode, "run") == 0;
  const bool listen = mode != nullptr && (strcmp(mode, "1") == 0 || strcmp(mode, "listen") == 0);
  if (!run && !listen) {
    if (!inherit) ForgetInChildren();
    return;
  }
  // A shell or launcher (a wrapper script, env, a version manager's shim) passes the agent on to
  // the program it starts. Under `run`, every other process of the program that is not a Node
  // process listens (and its own children do not load the agent): the CLI keeps the one that is
  // the program (docs/cli.md says how it chooses).
  if (IsLauncher() || (run && InNode())) return;
  if (!inherit) ForgetInChildren();
  g = new State();
  g->run = run;
  if (const char* file = Env("ALLOCATOR_STATS_SAMPLE_FILE")) g->sampleFile = file;
  const std::string dir = run ? (Env("ALLOCATOR_STATS_AGENT_DIR") ? Env("ALLOCATOR_STATS_AGENT_DIR") : "") : DefaultDirectory();
  if (dir.empty() || !Listen(dir)) return;
  if (run) {
    std::string line = "{\"type\":\"agent\",\"pid\":" + std::to_string(getpid()) + ",\"socket\":";
    AppendQuoted(line, g->socketPath);
    AppendLine(g->sampleFile, line + "}");
  }
}

}  // namespace agent
}  // namespace allocstats

__attribute__((constructor)) static void AllocatorStatsAgentInit() { allocstats::agent::Start(); }

// exit() is where a program that calls it begins to exit; a return from main goes through the
// wrapper below instead (glibc calls its own exit() then, which no library can interpose).
extern "C" __attribute__((visibility("default"))) void exit(int status) {
  allocstats::agent::BeginExit();
  using Exit = void (*)(int);
  static Exit real = reinterpret_cast<Exit>(dlsym(RTLD_NEXT, "exit"));
  if (real == nullptr) _exit(status);
  real(status);
  __builtin_unreachable();
}

#ifdef __GLIBC__
namespace {
using Main = int (*)(int, char**, char**);
Main programMain = nullptr;
int MainThenExit(int argc, char** argv, char** envp) {
  int status = programMain(argc, argv, envp);
  allocstats::agent::BeginExit();
  return status;
}
}  // namespace

// The program's main, wrapped so that a return from it is seen before exit handlers run.
extern "C" __attribute__((visibility("default"))) int __libc_start_main(Main main, int argc, char** argv, void (*init)(),
                                                                         void (*fini)(), void (*rtldFini)(), void* stackEnd) {
  using Start = int (*)(Main, int, char**, void (*)(), void (*)(), void (*)(), void*);
  Start real = reinterpret_cast<Start>(dlsym(RTLD_NEXT, "__libc_start_main"));
  if (real == nullptr) abort();
  programMain = main;
  return real(MainThenExit, argc, argv, init, fini, rtldFini, stackEnd);
}
#endif
