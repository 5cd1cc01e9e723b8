#!/usr/bin/env bash
# Builds the agent against musl (musl-gcc, with Debian's glibc-built static libstdc++ linked in)
# and a small musl host program into the directory $1; prints the agent library's path.
#   scripts/build-musl-agent.sh <out dir>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MUSL="$ROOT/test/agent/musl"
OUT="${1:?usage: scripts/build-musl-agent.sh <out dir>}"

if ! command -v musl-gcc >/dev/null 2>&1; then
  echo "build-musl-agent: musl-gcc not found (Debian/Ubuntu: apt-get install musl-tools)" >&2
  exit 2
fi
CXX="${CXX:-g++}"
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "build-musl-agent: $CXX not found (apt-get install g++)" >&2
  exit 2
fi

# musl-gcc is a wrapper that adds "-specs <file>": the same specs drive g++.
SPECS="$(sed -n 's/.*-specs "\{0,1\}\([^" ]*\)"\{0,1\}.*/\1/p' "$(command -v musl-gcc)" | head -n 1)"
if [ -z "$SPECS" ] || [ ! -f "$SPECS" ]; then
  echo "build-musl-agent: cannot find the specs file musl-gcc uses (looked in $(command -v musl-gcc))" >&2
  exit 2
fi
# The specs drop the C++ include directories (-nostdinc): give libstdc++'s back.
GCC_MAJOR="$("$CXX" -dumpversion | cut -d. -f1)"
TRIPLET="$("$CXX" -dumpmachine)"
CXX_INCLUDE="/usr/include/c++/$GCC_MAJOR"
CXX_TARGET_INCLUDE="/usr/include/$TRIPLET/c++/$GCC_MAJOR"
for d in "$CXX_INCLUDE" "$CXX_TARGET_INCLUDE"; do
  if [ ! -d "$d" ]; then
    echo "build-musl-agent: no libstdc++ headers in $d (apt-get install libstdc++-$GCC_MAJOR-dev)" >&2
    exit 2
  fi
done

# One field of binding.gyp's agent target, one item a line (binding.gyp is JSON once its
# comment lines are dropped).
gyp_field() {
  node -e '
    const fs = require("fs");
    const text = fs.readFileSync(process.argv[1], "utf8").split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
    const target = JSON.parse(text).targets.find((t) => t.target_name === "allocator_stats_agent");
    if (!target) throw new Error("binding.gyp has no target allocator_stats_agent");
    for (const item of target[process.argv[2]] || []) console.log(item.replace(/<\(module_root_dir\)/g, process.argv[3]));
  ' "$ROOT/binding.gyp" "$1" "$ROOT"
}
mapfile -t SOURCES < <(gyp_field sources)
mapfile -t DEFINES < <(gyp_field defines)
mapfile -t INCLUDES < <(gyp_field include_dirs)
mapfile -t CFLAGS < <(gyp_field cflags_cc)
mapfile -t LDFLAGS < <(gyp_field ldflags)
mapfile -t LIBRARIES < <(gyp_field libraries)
[ "${#SOURCES[@]}" -gt 0 ] || { echo "build-musl-agent: binding.gyp lists no agent sources" >&2; exit 1; }

mkdir -p "$OUT/obj"
COMMON=(-specs "$SPECS" -isystem "$CXX_INCLUDE" -isystem "$CXX_TARGET_INCLUDE" -include "$MUSL/libstdcxx-on-musl.h"
  -O2 -fPIC "${CFLAGS[@]}" -fexceptions)
for d in "${DEFINES[@]}"; do COMMON+=("-D$d"); done
for i in "${INCLUDES[@]}"; do
  case "$i" in /*) COMMON+=("-I$i") ;; *) COMMON+=("-I$ROOT/$i") ;; esac
done

# Compiled in parallel; every failure is reported.
OBJECTS=()
PIDS=()
for src in "${SOURCES[@]}"; do
  obj="$OUT/obj/$(echo "$src" | tr '/' '_').o"
  OBJECTS+=("$obj")
  "$CXX" "${COMMON[@]}" -c "$ROOT/$src" -o "$obj" &
  PIDS+=($!)
done
failed=0
for pid in "${PIDS[@]}"; do wait "$pid" || failed=1; done
[ "$failed" -eq 0 ] || { echo "build-musl-agent: compiling the agent against musl failed" >&2; exit 1; }

musl-gcc -O2 -fPIC -Wall -Wextra -c "$MUSL/glibc-abi.c" -o "$OUT/obj/glibc-abi.o"

# binding.gyp's ldflags (static libstdc++, hidden, -z defs, the exports version script), plus a
# static libgcc: musl has no libgcc_s.
AGENT="$OUT/allocator_stats_agent.musl.so"
"$CXX" -specs "$SPECS" -shared -o "$AGENT" "${OBJECTS[@]}" "$OUT/obj/glibc-abi.o" \
  -static-libstdc++ -static-libgcc -pthread -Wl,--eh-frame-hdr "${LDFLAGS[@]}" "${LIBRARIES[@]}"

musl-gcc -O2 -Wall -Wextra -o "$OUT/host" "$MUSL/host.c"

echo "$AGENT"
