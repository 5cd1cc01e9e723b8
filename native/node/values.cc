#include "node/values.h"

#include <cmath>
#include <cstring>

#include "node/errors.h"

namespace allocstats {

Napi::Value ToJs(Napi::Env env, const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return env.Undefined();
    case Value::Kind::Null: return env.Null();
    case Value::Kind::Bool: return Napi::Boolean::New(env, v.flag);
    case Value::Kind::Number: return Napi::Number::New(env, v.number);
    case Value::Kind::Int64: return Napi::Number::New(env, static_cast<double>(v.int64));
    case Value::Kind::Uint64: return Napi::BigInt::New(env, v.uint64);
    case Value::Kind::String: return Napi::String::New(env, v.text);
    case Value::Kind::Array: {
      Napi::Array array = Napi::Array::New(env, v.items.size());
      for (size_t i = 0; i < v.items.size(); i++) array.Set(static_cast<uint32_t>(i), ToJs(env, v.items[i]));
      return array;
    }
    case Value::Kind::Object: {
      Napi::Object object = Napi::Object::New(env);
      for (const auto& field : v.fields) object.Set(field.first, ToJs(env, field.second));
      return object;
    }
    case Value::Kind::Float64Array: {
      Napi::Float64Array array = Napi::Float64Array::New(env, v.numbers.size());
      if (!v.numbers.empty()) memcpy(array.Data(), v.numbers.data(), v.numbers.size() * sizeof(double));
      return array;
    }
  }
  return env.Undefined();
}

namespace {

constexpr double kTwo63 = 9223372036854775808.0;

bool WholeInt64(double d) { return std::isfinite(d) && std::floor(d) == d && d >= -kTwo63 && d < kTwo63; }

// Whether an argument fits its parameter; what is wrong when it does not.
enum class Fit { Ok, Type, Range };

// What a value of unknown kind is: Type when it is none of the kinds allowed.
Fit AnyFromJs(const Napi::Value& js, Value& out) {
  if (js.IsUndefined()) return out = Value(), Fit::Ok;
  if (js.IsNull()) return out = Value::Null(), Fit::Ok;
  if (js.IsBoolean()) return out = Value::Bool(js.As<Napi::Boolean>().Value()), Fit::Ok;
  if (js.IsString()) return out = Value::String(js.As<Napi::String>().Utf8Value()), Fit::Ok;
  if (js.IsNumber()) {
    double d = js.As<Napi::Number>().DoubleValue();
    out = WholeInt64(d) ? Value::Int64(static_cast<int64_t>(d)) : Value::Number(d);
    return Fit::Ok;
  }
  if (js.IsBigInt()) {
    bool lossless = false;
    uint64_t u = js.As<Napi::BigInt>().Uint64Value(&lossless);
    out = Value::BigInt(u);
    return lossless ? Fit::Ok : Fit::Range;
  }
  return Fit::Type;
}

Fit ParamFromJs(const Napi::CallbackInfo& info, size_t i, const Param& param, Value& out) {
  const bool present = i < info.Length();
  const Napi::Value js = present ? info[i] : info.Env().Undefined();
  switch (param.kind) {
    case Param::Kind::String:
      if (!js.IsString()) return Fit::Type;
      out = Value::String(js.As<Napi::String>().Utf8Value());
      return Fit::Ok;
    case Param::Kind::Strings: {
      if (!js.IsArray()) return Fit::Type;
      Napi::Array array = js.As<Napi::Array>();
      out = Value::Array();
      out.items.reserve(array.Length());
      for (uint32_t k = 0; k < array.Length(); k++) {
        Napi::Value item = array.Get(k);
        if (!item.IsString()) {
          throw JsError(info.Env(), "ERR_INVALID_ARG_TYPE", param.elementMessage != nullptr ? param.elementMessage : param.message,
                        CodedError::Kind::Type);
        }
        out.items.push_back(Value::String(item.As<Napi::String>().Utf8Value()));
      }
      return Fit::Ok;
    }
    case Param::Kind::Int32:
    case Param::Kind::Int64: {
      if (!js.IsNumber()) return Fit::Type;
      Napi::Number n = js.As<Napi::Number>();
      out = Value::Int64(param.kind == Param::Kind::Int32 ? n.Int32Value() : n.Int64Value());
      return Fit::Ok;
    }
    case Param::Kind::Integer: {
      if (!js.IsNumber()) return Fit::Type;
      double d = js.As<Napi::Number>().DoubleValue();
      if (!WholeInt64(d)) return Fit::Range;
      out = Value::Int64(static_cast<int64_t>(d));
      return Fit::Ok;
    }
    case Param::Kind::OptionalFinite: {
      if (!js.IsNumber()) return out = Value(), Fit::Ok;
      double d = js.As<Napi::Number>().DoubleValue();
      if (!std::isfinite(d)) return Fit::Range;
      out = Value::Number(d);
      return Fit::Ok;
    }
    case Param::Kind::Any:
      return AnyFromJs(js, out);
  }
  return Fit::Type;
}

}  // namespace

std::vector<Value> ArgsFromJs(const Napi::CallbackInfo& info, const std::vector<Param>& params) {
  std::vector<Value> args(params.size());
  for (size_t i = 0; i < params.size(); i++) {
    switch (ParamFromJs(info, i, params[i], args[i])) {
      case Fit::Ok: break;
      case Fit::Type: throw JsError(info.Env(), "ERR_INVALID_ARG_TYPE", params[i].message, CodedError::Kind::Type);
      case Fit::Range: throw JsError(info.Env(), "ERR_OUT_OF_RANGE", params[i].message, CodedError::Kind::Range);
    }
  }
  return args;
}

}  // namespace allocstats
