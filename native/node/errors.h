// The core's coded errors as the JS errors callers see: the same class (Error, TypeError,
// RangeError), `code` and message.
#pragma once

#include <napi.h>

#include <string>

#include "core/error.h"

namespace allocstats {

Napi::Error JsError(Napi::Env env, const char* code, const std::string& message,
                    CodedError::Kind kind = CodedError::Kind::Error);
inline Napi::Error JsError(Napi::Env env, const CodedError& error) {
  return JsError(env, error.code(), error.what(), error.kind());
}

// Runs `body` on the JS thread with the core's errors turned into JS ones.
template <typename Body>
Napi::Value Guarded(Napi::Env env, Body body) {
  try {
    return body();
  } catch (const CodedError& error) {
    throw JsError(env, error);
  }
}

}  // namespace allocstats
