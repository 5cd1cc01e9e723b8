{
  # C++ exception mode: exceptions ON, with NODE_ADDON_API_CPP_EXCEPTIONS_ALL so that
  # node-addon-api turns every C++ exception (Napi::Error and std::exception alike, e.g.
  # std::bad_alloc) into a JS exception at the N-API boundary; none crosses it uncaught.
  # AsyncWorker::Execute() exceptions become a rejected Promise the same way.
  # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: in an environment that is being torn down (a worker
  # terminated mid-call, process.exit()) an error can no longer be thrown into JS; node-addon-api
  # then drops it instead of raising a C++ exception that nobody catches (std::terminate).
  "targets": [
    {
      "target_name": "allocator_stats",
      "sources": [
        "native/addon.cc",
        "native/detect.cc",
        "native/procfs.cc",
        "native/glibc.cc",
        "native/jemalloc.cc",
        "native/tcmalloc.cc",
        "native/mimalloc.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
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
      "libraries": ["-ldl"]
    }
  ]
}
