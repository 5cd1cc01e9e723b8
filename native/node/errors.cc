#include "node/errors.h"

namespace allocstats {

Napi::Error JsError(Napi::Env env, const char* code, const std::string& message, CodedError::Kind kind) {
  Napi::Error error = kind == CodedError::Kind::Type    ? Napi::TypeError::New(env, message)
                      : kind == CodedError::Kind::Range ? Napi::RangeError::New(env, message)
                                                        : Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

}  // namespace allocstats
