#include "core/maps.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace allocstats {

namespace {

// Reads a whole (small) procfs file. procfs files report size 0, so read until EOF.
bool ReadFile(const char* path, std::string& out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out.clear();
  char buffer[8192];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

}  // namespace

bool ReadMappings(std::vector<Mapping>& out) {
  out.clear();
  std::string maps;
  if (!ReadFile("/proc/self/maps", maps)) return false;
  const char* line = maps.c_str();
  while (*line != '\0') {
    const char* next = strchr(line, '\n');
    const char* lineEnd = next != nullptr ? next : line + strlen(line);
    unsigned long start = 0, end = 0, inode = 0;
    char perms[5] = {0};
    int pathOffset = 0;
    if (sscanf(line, "%lx-%lx %4s %*x %*x:%*x %lu %n", &start, &end, perms, &inode, &pathOffset) >= 4) {
      const char* path = line + pathOffset;
      Mapping m;
      m.start = start, m.end = end;
      m.readWrite = perms[0] == 'r' && perms[1] == 'w';
      m.heap = strncmp(path, "[heap]", 6) == 0;
      m.anonymous = inode == 0 && (path >= lineEnd || *path == '\n' || *path == '\0');
      out.push_back(m);
    }
    if (next == nullptr) break;
    line = next + 1;
  }
  return true;
}

}  // namespace allocstats
