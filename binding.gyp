{
  # C++ exception mode: exceptions ON, with NODE_ADDON_API_CPP_EXCEPTIONS_ALL so that
  # node-addon-api turns every C++ exception (Napi::Error and std::exception alike, e.g.
  # std::bad_alloc) into a JS exception at the N-API boundary; none crosses it uncaught.
  # AsyncWorker::Execute() exceptions become a rejected Promise the same way.
  # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: in an environment that is being torn down (a worker
  # terminated mid-call, process.exit()) an error can no longer be thrown into JS; node-addon-api
  # then drops it instead of raising a C++ exception that nobody catches (std::terminate).
  "variables": {
    "allocator_stats_portable%": "<!(node -p \"process.env.ALLOCATOR_STATS_PORTABLE === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "allocator_stats",
      "sources": [
        "native/core/backend.cc",
        "native/core/detect.cc",
        "native/core/maps.cc",
        "native/core/procfs.cc",
        "native/glibc/arenas.cc",
        "native/glibc/counters.cc",
        "native/glibc/glibc.cc",
        "native/glibc/malloc-info.cc",
        "native/glibc/symbols.cc",
        "native/jemalloc/jemalloc.cc",
        "native/tcmalloc/tcmalloc.cc",
        "native/mimalloc/mimalloc.cc",
        "native/node/addon.cc",
        "native/node/calls.cc",
        "native/node/node-environment.cc",
        "native/node/errors.cc",
        "native/node/extras.cc",
        "native/node/values.cc"
      ],
      # Includes name their layer: "core/...", "glibc/...", "node/...". Only native/node/
      # includes napi.h; the rest builds without Node (test/core/native-core.test.ts).
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "_GNU_SOURCE"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      # Every allocator symbol is resolved with dlsym at run time; only libdl is linked
      # (part of libc on glibc >= 2.34 and on musl).
      "libraries": ["-ldl"],
      # Portable build (ALLOCATOR_STATS_PORTABLE=1, set by scripts/prebuild.js for the published
      # prebuilds): loads on glibc >= 2.28 and needs no libstdc++ of a given version.
      # native/core/glibc-compat.h/.cc pin glibc symbol versions; libstdc++ is linked in and hidden.
      # libgcc_s stays shared: every glibc system has it (Node needs it too) and the static
      # unwinder of GCC 12 calls _dl_find_object, which glibc has only from 2.35.
      "conditions": [
        ["OS=='linux' and allocator_stats_portable==1", {
          "sources": ["native/core/glibc-compat.cc"],
          "cflags_cc": ["-include", "<(module_root_dir)/native/core/glibc-compat.h"],
          "ldflags": ["-static-libstdc++", "-Wl,--exclude-libs,ALL"]
        }]
      ]
    },
    {
      # The agent (native/agent/agent.cc says what it does): the same core and backends in a
      # library that LD_PRELOAD puts into any dynamically linked program. No Node: nothing of
      # native/node/ and no N-API symbol, so it loads where no Node runs.
      "target_name": "allocator_stats_agent",
      "type": "shared_library",
      "sources": [
        "native/core/backend.cc",
        "native/core/detect.cc",
        "native/core/maps.cc",
        "native/core/procfs.cc",
        "native/glibc/arenas.cc",
        "native/glibc/counters.cc",
        "native/glibc/glibc.cc",
        "native/glibc/malloc-info.cc",
        "native/glibc/symbols.cc",
        "native/jemalloc/jemalloc.cc",
        "native/tcmalloc/tcmalloc.cc",
        "native/mimalloc/mimalloc.cc",
        "native/agent/agent.cc",
        "native/agent/json.cc",
        "native/agent/session.cc"
      ],
      "include_dirs": ["native"],
      "defines": ["_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl", "-lpthread"],
      # Its C++ runtime is linked in and hidden: the program it is loaded into may bring another.
      "ldflags": ["-static-libstdc++", "-Wl,--exclude-libs,ALL", "-Wl,-z,defs", "-Wl,--version-script=<(module_root_dir)/native/agent/exports.map"],
      "conditions": [
        ["OS=='linux' and allocator_stats_portable==1", {
          "sources": ["native/core/glibc-compat.cc"],
          "cflags_cc": ["-include", "<(module_root_dir)/native/core/glibc-compat.h"],
          # Before glibc 2.34 the thread functions live in libpthread, which a program that
          # starts no thread does not load: the agent needs it itself (agent.cc says which).
          "libraries": ["-Wl,--push-state,--no-as-needed", "-l:libpthread.so.0", "-Wl,--pop-state"]
        }]
      ]
    }
  ]
}
