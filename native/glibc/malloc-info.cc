#include "glibc/malloc-info.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "glibc/symbols.h"

namespace allocstats {

namespace {

enum : int {
  kBucket = RowKind::bucket, kUnsorted = RowKind::unsorted, kTotalFast = RowKind::totalFast, kTotalRest = RowKind::totalRest,
  kTotalMmap = RowKind::totalMmap, kSystemCurrent = RowKind::systemCurrent, kSystemMax = RowKind::systemMax
};

// `key` is ` name="`; malloc_info prints whole numbers only.
double Attribute(const char* tag, const char* end, const char* key) {
  const char* at = strstr(tag, key);
  if (at == nullptr || at >= end) return 0;
  return static_cast<double>(strtoull(at + strlen(key), nullptr, 10));
}

bool Starts(const char* at, const char* prefix) { return strncmp(at, prefix, strlen(prefix)) == 0; }

}  // namespace

std::string MallocInfoXml() {
  const GlibcApi& api = Api();
  if (api.mallocInfo == nullptr) return "";
  char* buffer = nullptr;
  size_t length = 0;
  FILE* stream = open_memstream(&buffer, &length);
  if (stream == nullptr) return "";
  api.mallocInfo(0, stream);
  fclose(stream);
  std::string xml(buffer != nullptr ? buffer : "", length);
  free(buffer);
  return xml;
}

void ParseMallocInfo(const std::string& xml, std::vector<double>& rows) {
  rows.clear();
  double arena = -1;
  const char* at = xml.c_str();
  while ((at = strchr(at, '<')) != nullptr) {
    const char* end = strchr(at, '>');
    if (end == nullptr) break;
    double kind = 0, a = 0, b = 0, c = 0, d = 0;
    if (Starts(at, "<heap ")) {
      arena = Attribute(at, end, " nr=\"");
    } else if (Starts(at, "</heap>")) {
      arena = -1;
    } else if (Starts(at, "<size ") || Starts(at, "<unsorted ")) {
      kind = at[1] == 's' ? kBucket : kUnsorted;
      a = Attribute(at, end, " from=\""), b = Attribute(at, end, " to=\"");
      c = Attribute(at, end, " total=\""), d = Attribute(at, end, " count=\"");
    } else if (Starts(at, "<total type=\"")) {
      const char* type = at + 13;
      kind = Starts(type, "fast") ? kTotalFast : Starts(type, "rest") ? kTotalRest : Starts(type, "mmap") ? kTotalMmap : 0;
      a = Attribute(at, end, " count=\""), b = Attribute(at, end, " size=\"");
    } else if (Starts(at, "<system type=\"")) {
      const char* type = at + 14;
      kind = Starts(type, "current") ? kSystemCurrent : Starts(type, "max") ? kSystemMax : 0;
      a = Attribute(at, end, " size=\"");
    }
    if (kind != 0) {
      const double row[kRowWidth] = {kind, arena, a, b, c, d};
      rows.insert(rows.end(), row, row + kRowWidth);
    }
    at = end + 1;
  }
}

bool MallinfoFromRows(const std::vector<double>& rows, Mallinfo& out) {
  bool system = false;
  double restSize = 0, mainRest = 0, mainFast = 0, mainBinned = 0;
  for (size_t i = 0; i + kRowWidth <= rows.size(); i += kRowWidth) {
    const int kind = static_cast<int>(rows[i]);
    const double arena = rows[i + 1], a = rows[i + 2], b = rows[i + 3], c = rows[i + 4];
    if (arena < 0) {
      if (kind == kTotalFast) out.smblks = size_t(a), out.fsmblks = size_t(b);
      if (kind == kTotalRest) out.ordblks = size_t(a), restSize = b;
      if (kind == kTotalMmap) out.hblks = size_t(a), out.hblkhd = size_t(b);
      if (kind == kSystemCurrent) out.arena = size_t(a), system = true;
    } else if (arena == 0) {
      if (kind == kBucket || kind == kUnsorted) mainBinned += c;
      if (kind == kTotalFast) mainFast = b;
      if (kind == kTotalRest) mainRest = b;
    }
  }
  if (!system) return false;
  out.source = "malloc_info";
  out.fordblks = out.fsmblks + size_t(restSize);
  out.uordblks = out.arena > out.fordblks ? out.arena - out.fordblks : 0;
  out.usmblks = 0;
  // The histogram lists fast-bin chunks too; `rest` is the other bins plus the top chunk.
  double top = mainRest - (mainBinned - mainFast);
  out.keepcost = top > 0 ? size_t(top) : 0;
  return true;
}

}  // namespace allocstats
