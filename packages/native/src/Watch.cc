// Watch.cc: a readable-fd watcher owned by the addon (a libuv uv_poll_t on
// the calling thread's event loop) that drains a non-blocking fd in C++ and
// calls ONE JavaScript function with the byte count, the bytes already in
// an ArrayBuffer the caller gave once. It serves the signal self-pipe and
// the FIFO doorbells: no net.Socket, no Readable stream, no Buffer per wake.
//
//   watchFd(fd, buffer: ArrayBuffer, onData: (n: number) => void) -> handle
//   handle.ref() / handle.unref() / handle.close()
//
// onData(n): n > 0 bytes were read into buffer[0, n) (records never split
// across calls when the record size divides the buffer size and writers
// write whole records atomically, as the signal handler does); n < 0 is
// -errno of a failed read (the watcher stops). The call is a MakeCallback
// (microtasks and nextTicks run after it, async hooks see it), so it behaves
// like any libuv-driven callback in Node. The fd stays the caller's: close()
// stops watching and never closes it. A watcher still open when its Node
// environment is torn down (a worker thread ending) is closed by a cleanup
// hook, so no libuv handle outlives its loop.
//
// Exit notification (Linux >= 5.3): pidfdOpen(pid) -> fd, a pidfd, which
// polls readable once its process has exited. watchFd(fd, null, onData)
// is the one-shot form for such an fd: on readable it calls onData(0) once,
// stops, and closes the fd (a pidfd has nothing to read). The watcher owns
// the fd once constructed; a constructor that throws leaves it to the caller.
#include "Watch.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "UvMin.h"

#include "Errors.h"

namespace ipc {
namespace {

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {InstanceMethod("ref", &FdWatcher::Ref), InstanceMethod("unref", &FdWatcher::Unref),
                        InstanceMethod("close", &FdWatcher::Close)});
  }

  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    int32_t fd;
    if (!ArgInt32(info, 0, "fd", &fd)) return;
    if (info.Length() < 3 || !(info[1].IsArrayBuffer() || info[1].IsNull()) || !info[2].IsFunction()) {
      ThrowType(env, "watchFd(fd, buffer: ArrayBuffer | null, onData: function)");
      return;
    }
    notify_ = info[1].IsNull();
    if (!notify_ && info[1].As<Napi::ArrayBuffer>().ByteLength() == 0) {
      ThrowRange(env, "watchFd: the buffer must not be empty");
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "watchFd: no event loop").ThrowAsJavaScriptException();
      return;
    }
    poll_ = new Poll();
    poll_->owner = this;
    int err = uv_poll_init(loop, poll_->uv(), fd);
    if (err != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowErrno(env, -err, "uv_poll_init", "watching fd " + std::to_string(fd));
      return;
    }
    err = uv_poll_start(poll_->uv(), kUvReadable, OnReadable);
    if (err != 0) {
      uv_close(poll_->handle(), OnClosed);
      poll_ = nullptr;
      ThrowErrno(env, -err, "uv_poll_start", "watching fd " + std::to_string(fd));
      return;
    }
    fd_ = fd;
    if (!notify_) {
      Napi::ArrayBuffer buffer = info[1].As<Napi::ArrayBuffer>();
      buffer_ref_ = Napi::Persistent(buffer);
      data_ = static_cast<char*>(buffer.Data());
      size_ = buffer.ByteLength();
    }
    callback_ = Napi::Persistent(info[2].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "IpcFdWatcher");
    env_ = env;
    napi_add_env_cleanup_hook(env, OnTeardown, this);
    hooked_ = true;
    self_ = Napi::Persistent(info.This().As<Napi::Object>()); // lives while watching
  }

  ~FdWatcher() override {
    Stop();
    delete context_;
  }

 private:
  // The libuv handle's storage comes first: a uv_poll_t* is a Poll*.
  struct Poll {
    alignas(8) unsigned char storage[kUvPollStorage];
    FdWatcher* owner;
    uv_poll_t* uv() { return reinterpret_cast<uv_poll_t*>(storage); }
    uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(storage); }
  };

  static void OnClosed(uv_handle_t* handle) { delete reinterpret_cast<Poll*>(handle); }

  static void OnTeardown(void* arg) {
    FdWatcher* self = static_cast<FdWatcher*>(arg);
    self->hooked_ = false;
    self->Stop();
  }

  static void OnReadable(uv_poll_t* handle, int status, int) {
    FdWatcher* self = reinterpret_cast<Poll*>(handle)->owner;
    if (self == nullptr) return;
    if (status < 0) {
      self->Deliver(status);
      return;
    }
    if (self->notify_) {
      self->Deliver(0);
      self->Stop();
      return;
    }
    // Read what the fd holds, up to one buffer per call; a full buffer means
    // more may wait: deliver, then read again (the buffer is free once the
    // callback returned).
    for (;;) {
      ssize_t n;
      do {
        n = read(self->fd_, self->data_, self->size_);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) self->Deliver(-errno);
        return;
      }
      if (n == 0) return;  // EOF: nothing to deliver (an O_RDWR FIFO never sees it)
      if (!self->Deliver(static_cast<int>(n))) return;
      if (static_cast<size_t>(n) < self->size_ || self->poll_ == nullptr) return;
    }
  }

  // Calls onData(n); false when the watcher was closed meanwhile. Raw
  // N-API calls whose failures are ignored: while a worker is being
  // terminated every call into its environment fails, and node-addon-api's
  // wrappers would then build an Error, which fails too and is fatal. A
  // callback that throws is reported as an uncaught exception, as Node does
  // for any I/O callback.
  bool Deliver(int n) {
    napi_env env = env_;
    if (n < 0) Stop();
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return poll_ != nullptr;
    napi_value fn, global, arg, result;
    if (napi_get_reference_value(env, callback_.operator napi_ref(), &fn) == napi_ok && fn != nullptr &&
        napi_get_global(env, &global) == napi_ok && napi_create_int32(env, n, &arg) == napi_ok) {
      napi_status status = napi_make_callback(env, *context_, global, fn, 1, &arg, &result);
      if (status == napi_pending_exception) {
        napi_value error;
        if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
      }
    }
    napi_close_handle_scope(env, scope);
    return poll_ != nullptr;
  }

  void Stop() {
    if (poll_ != nullptr) {
      poll_->owner = nullptr;
      uv_close(poll_->handle(), OnClosed);
      poll_ = nullptr;
      if (notify_ && fd_ >= 0) close(fd_);  // after uv_close: libuv no longer polls it
      fd_ = -1;
    }
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, OnTeardown, this);
      hooked_ = false;
    }
    if (!self_.IsEmpty()) self_.Reset();  // collectable once JS lets go
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(poll_->handle());
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(poll_->handle());
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  Poll* poll_ = nullptr;
  int fd_ = -1;
  bool notify_ = false;  // one-shot readable notification; the fd is ours to close
  char* data_ = nullptr;
  size_t size_ = 0;
  bool hooked_ = false;
  napi_env env_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> buffer_ref_;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
  Napi::ObjectReference self_;
};

// pidfdOpen(pid) -> a close-on-exec pidfd (pidfd_open(2), Linux >= 5.3; by
// syscall number, which is 434 on every architecture, for C libraries
// without the wrapper). ESRCH: no such process; ENOSYS: an older kernel.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid;
  if (!ArgInt32(info, 0, "pid", &pid)) return env.Undefined();
  if (pid <= 0) {
    ThrowRange(env, "pidfdOpen: pid must be a positive integer, got " + std::to_string(pid));
    return env.Undefined();
  }
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
  long fd = syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0u);
  if (fd < 0) {
    ThrowErrno(env, errno, "pidfd_open", "pidfd_open(" + std::to_string(pid) + ")");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

}  // namespace

void InitWatch(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = FdWatcher::Define(env);
  exports.Set("FdWatcher", ctor);
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
}

}  // namespace ipc
