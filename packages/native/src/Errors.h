// Errors.h: errno -> JS error with Node's SystemError shape
// ({code, errno, syscall, message}), plus helpers for argument errors.
//
// The addon is built with NAPI_DISABLE_CPP_EXCEPTIONS: every helper here
// sets a pending JS exception and the caller returns at once.
#pragma once

#include <napi.h>
#include <string>

namespace ipc {

// Name of an errno value ("EACCES"), or "E<number>" for one glibc doesn't know.
std::string ErrnoName(int err);

// Throws Error{code: 'EACCES', errno: -13, syscall: 'shmat', message:
// "<what>: EACCES (Permission denied)"}. errno is negated as in Node's own
// SystemErrors (fs, net), so err.errno === -os.constants.errno.EACCES.
void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& what);

void ThrowType(Napi::Env env, const std::string& message);
void ThrowRange(Napi::Env env, const std::string& message);

// Argument readers: return false (with a TypeError pending) when the argument
// is missing or of the wrong type. `name` appears in the message.
bool ArgInt32(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t* out);
bool ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* out);
bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out);

}  // namespace ipc
