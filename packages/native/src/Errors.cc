// Errors.cc: see Errors.h.
#include "Errors.h"

#include <cmath>
#include <cstring>

namespace ipc {

std::string ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
#endif
  return "E" + std::to_string(err);
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& what) {
  std::string code = ErrnoName(err);
  std::string message = what + ": " + code + " (" + strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

void ThrowRange(Napi::Env env, const std::string& message) {
  Napi::RangeError::New(env, message).ThrowAsJavaScriptException();
}

static bool ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name, double* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), std::string("Expected ") + name + " to be a number");
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::trunc(v) != v) {
    ThrowType(info.Env(), std::string("Expected ") + name + " to be an integer");
    return false;
  }
  *out = v;
  return true;
}

bool ArgInt32(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t* out) {
  double v;
  if (!ArgNumber(info, i, name, &v)) return false;
  if (v < -2147483648.0 || v > 2147483647.0) {
    ThrowRange(info.Env(), std::string("Expected ") + name + " to fit in 32 bits");
    return false;
  }
  *out = static_cast<int32_t>(v);
  return true;
}

bool ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* out) {
  double v;
  if (!ArgNumber(info, i, name, &v)) return false;
  if (std::fabs(v) > 9007199254740991.0) {
    ThrowRange(info.Env(), std::string("Expected ") + name + " to be a safe integer");
    return false;
  }
  *out = static_cast<int64_t>(v);
  return true;
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowType(info.Env(), std::string("Expected ") + name + " to be a string");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

}  // namespace ipc
