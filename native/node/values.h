// Core values to JS and arguments from JS, as a backend's extras declare them.
#pragma once

#include <napi.h>

#include "core/extra.h"
#include "core/value.h"

namespace allocstats {

Napi::Value ToJs(Napi::Env env, const Value& value);

// The one check at the boundary: an argument that is not what its parameter says is refused
// with ERR_INVALID_ARG_TYPE and the parameter's message, before any cast could misread it.
// Ranges are TypeScript's to check.
std::vector<Value> ArgsFromJs(const Napi::CallbackInfo& info, const std::vector<Param>& params);

}  // namespace allocstats
