// Pipes.cc: anonymous pipes, FIFOs, and the doorbell's one-byte write.
// Reading is left to the event loop (net.Socket over the fd, see lib/).
#include "Pipes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "Errors.h"

namespace ipc {
namespace {

// pipe(nonBlocking) -> [readFd, writeFd], both close-on-exec. Passing an fd
// as a child's stdio dup2()s it, which clears close-on-exec on the copy only.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool non_blocking = info.Length() > 0 && info[0].ToBoolean().Value();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | (non_blocking ? O_NONBLOCK : 0)) == -1) {
    ThrowErrno(env, errno, "pipe2", "pipe()");
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int32_t mode;
  if (!ArgString(info, 0, "path", &path) || !ArgInt32(info, 1, "mode", &mode)) return env.Undefined();
  if (mode < 0 || mode > 07777) {
    ThrowRange(env, "Expected mode to be from 0 to 0o7777");
    return env.Undefined();
  }
  if (mkfifo(path.c_str(), static_cast<mode_t>(mode)) == -1) {
    char m[16];
    snprintf(m, sizeof m, "0o%o", mode);
    ThrowErrno(env, errno, "mkfifo", "mkfifo(" + path + ", " + m + ")");
  }
  return env.Undefined();
}

// ringFd(fd) -> true if a byte was written, false if the pipe is full (a
// wakeup is already pending, so this ring coalesces with it). Never blocks on
// an O_NONBLOCK fd. EPIPE (no reader) throws; Node ignores SIGPIPE.
Napi::Value RingFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgInt32(info, 0, "fd", &fd)) return env.Undefined();
  static const char byte = 1;
  for (;;) {
    ssize_t n = write(fd, &byte, 1);
    if (n == 1) return Napi::Boolean::New(env, true);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "write", "ringing doorbell fd " + std::to_string(fd));
    return env.Undefined();
  }
}

}  // namespace

void InitPipes(Napi::Env env, Napi::Object exports) {
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo, "mkfifo"));
  exports.Set("ringFd", Napi::Function::New(env, RingFd, "ringFd"));
}

}  // namespace ipc
