// Signals.cc: sending signals (kill, killpg, sigqueue, tgkill, tgsigqueue),
// process groups, catching signals, and per-thread signal masks.
//
// Real-time signals aimed at the main thread are read from a signalfd
// instead (signalFdAdd below): blocked on that thread, they wait in the
// signalfd, and the event loop reads them with no signal frame, handler or
// self-pipe write (about 6 µs less per wakeup on a 2-vCPU VM, measured in
// docs/design.md). The handler stays installed for the other threads.
//
// Catching. The C handler is installed with sigaction(SA_SIGINFO|SA_RESTART)
// and does only async-signal-safe work: it saves errno, writes one fixed-size
// SignalRecord to a non-blocking, close-on-exec self-pipe (a write of <=
// PIPE_BUF bytes is atomic, so records never interleave even when several
// threads take signals at once), counts an overflow if the pipe is full, and
// restores errno. The JS side (lib/signals.ts) reads the pipe in the event
// loop and calls the handlers. Every handled signal's sa_mask holds all other
// handled signals, so while one handler runs the others wait.
//
// SignalRecord (32 bytes, host byte order):
//
//   0       4       8       12      16      20      24              32
//   +-------+-------+-------+-------+-------+-------+---------------+
//   | signo | code  |  pid  |  uid  | value |  tid  |   reserved    |
//   +-------+-------+-------+-------+-------+-------+---------------+
//   signo: the signal; code: si_code (SI_USER, SI_QUEUE, SI_TKILL, ...);
//   pid/uid: the sender's; value: si_value.sival_int (sigqueue/tgsigqueue);
//   tid: the thread that ran the handler.
#include "Signals.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "Errors.h"

namespace ipc {
namespace {

struct SignalRecord {
  int32_t signo;
  int32_t code;
  int32_t pid;
  uint32_t uid;
  int32_t value;
  int32_t tid;
  int32_t reserved[2];
};
static_assert(sizeof(SignalRecord) == 32, "SignalRecord is 32 bytes");

std::atomic<int> pipe_read_fd{-1};
std::atomic<int> pipe_write_fd{-1};
std::atomic<uint64_t> overflow_count{0};
static_assert(std::atomic<int>::is_always_lock_free, "lock-free atomics are async-signal-safe");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "lock-free atomics are async-signal-safe");

// Installed state; only touched from the JS main thread (never from a handler).
bool handled[_NSIG];
struct sigaction previous[_NSIG];

void OnSignal(int signo, siginfo_t* si, void*) {
  int saved_errno = errno;
  SignalRecord r;
  r.signo = signo;
  r.code = si->si_code;
  r.pid = si->si_pid;
  r.uid = si->si_uid;
  r.value = si->si_value.sival_int;
  r.tid = static_cast<int32_t>(syscall(SYS_gettid));
  r.reserved[0] = r.reserved[1] = 0;
  int fd = pipe_write_fd.load(std::memory_order_relaxed);
  if (fd < 0 || write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) {
    overflow_count.fetch_add(1, std::memory_order_relaxed);
  }
  errno = saved_errno;
}

bool ArgSignal(const Napi::CallbackInfo& info, size_t i, bool allow_zero, int32_t* out) {
  if (!ArgInt32(info, i, "signal", out)) return false;
  if (*out < (allow_zero ? 0 : 1) || *out > SIGRTMAX) {
    ThrowRange(info.Env(), "Expected a signal number from " + std::to_string(allow_zero ? 0 : 1) + " to " +
                               std::to_string(SIGRTMAX) + ", got " + std::to_string(*out));
    return false;
  }
  return true;
}

std::string Call(const char* name, std::initializer_list<int64_t> args) {
  std::string s = std::string(name) + "(";
  bool first = true;
  for (int64_t a : args) {
    if (!first) s += ", ";
    s += std::to_string(a);
    first = false;
  }
  return s + ")";
}

Napi::Value Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid, sig;
  if (!ArgInt32(info, 0, "pid", &pid) || !ArgSignal(info, 1, true, &sig)) return env.Undefined();
  if (kill(pid, sig) == -1) ThrowErrno(env, errno, "kill", Call("kill", {pid, sig}));
  return env.Undefined();
}

Napi::Value Killpg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pgrp, sig;
  if (!ArgInt32(info, 0, "pgrp", &pgrp) || !ArgSignal(info, 1, true, &sig)) return env.Undefined();
  if (pgrp < 0) {
    ThrowRange(env, "Expected pgrp to be >= 0 (0 means the caller's group)");
    return env.Undefined();
  }
  if (killpg(pgrp, sig) == -1) ThrowErrno(env, errno, "killpg", Call("killpg", {pgrp, sig}));
  return env.Undefined();
}

Napi::Value Sigqueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid, sig, value;
  if (!ArgInt32(info, 0, "pid", &pid) || !ArgSignal(info, 1, true, &sig) || !ArgInt32(info, 2, "value", &value))
    return env.Undefined();
  union sigval v;
  memset(&v, 0, sizeof v);
  v.sival_int = value;
  if (sigqueue(pid, sig, v) == -1) ThrowErrno(env, errno, "sigqueue", Call("sigqueue", {pid, sig, value}));
  return env.Undefined();
}

Napi::Value Tgkill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid, tid, sig;
  if (!ArgInt32(info, 0, "pid", &pid) || !ArgInt32(info, 1, "tid", &tid) || !ArgSignal(info, 2, true, &sig))
    return env.Undefined();
  if (syscall(SYS_tgkill, pid, tid, sig) == -1) ThrowErrno(env, errno, "tgkill", Call("tgkill", {pid, tid, sig}));
  return env.Undefined();
}

// rt_tgsigqueueinfo: sigqueue aimed at one thread. si_code SI_QUEUE (< 0) is
// what the kernel lets an unprivileged process send to another process.
Napi::Value Tgsigqueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid, tid, sig, value;
  if (!ArgInt32(info, 0, "pid", &pid) || !ArgInt32(info, 1, "tid", &tid) || !ArgSignal(info, 2, true, &sig) ||
      !ArgInt32(info, 3, "value", &value))
    return env.Undefined();
  // si_uid: the caller's (a 5th argument), else getuid() now. The kernel
  // passes si_uid on unchecked for SI_QUEUE (it is a claim, not a
  // credential), so a caller that knows its uid (the bus's doorbell ring)
  // saves a system call per ring; process.setuid() may change getuid().
  int64_t uid = -1;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    if (!ArgInt64(info, 4, "uid", &uid)) return env.Undefined();
    if (uid < 0 || uid > 0xfffffffeLL) {
      ThrowRange(env, "Expected uid to be a uid (0 to 4294967294)");
      return env.Undefined();
    }
  }
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = sig;
  si.si_code = SI_QUEUE;
  // getpid() once per process: it cannot change, because this addon never
  // forks (Node starts children by fork + exec, which loads a fresh copy).
  // That is one system call less per doorbell ring.
  static const pid_t self = getpid();
  si.si_pid = self;
  si.si_uid = uid >= 0 ? static_cast<uid_t>(uid) : getuid();
  si.si_value.sival_int = value;
  if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si) == -1)
    ThrowErrno(env, errno, "rt_tgsigqueueinfo", Call("tgsigqueue", {pid, tid, sig, value}));
  return env.Undefined();
}

Napi::Value Getpgid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid;
  if (!ArgInt32(info, 0, "pid", &pid)) return env.Undefined();
  pid_t g = getpgid(pid);
  if (g == -1) {
    ThrowErrno(env, errno, "getpgid", Call("getpgid", {pid}));
    return env.Undefined();
  }
  return Napi::Number::New(env, g);
}

Napi::Value Setpgid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid, pgid;
  if (!ArgInt32(info, 0, "pid", &pid) || !ArgInt32(info, 1, "pgid", &pgid)) return env.Undefined();
  if (setpgid(pid, pgid) == -1) ThrowErrno(env, errno, "setpgid", Call("setpgid", {pid, pgid}));
  return env.Undefined();
}

Napi::Value Gettid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// signalPipe() -> the read end of the self-pipe (created on first call).
Napi::Value SignalPipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = pipe_read_fd.load();
  if (fd >= 0) return Napi::Number::New(env, fd);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1) {
    ThrowErrno(env, errno, "pipe2", "creating the signal self-pipe");
    return env.Undefined();
  }
  // A deeper pipe absorbs longer signal storms before records overflow; not
  // fatal if the limit (/proc/sys/fs/pipe-max-size) says no.
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  pipe_read_fd.store(fds[0]);
  pipe_write_fd.store(fds[1]);
  return Napi::Number::New(env, fds[0]);
}

// Re-installs every handled signal so that each one's sa_mask holds all others.
bool InstallAll(Napi::Env env) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s = 1; s < _NSIG; s++)
    if (handled[s]) sigaddset(&mask, s);
  for (int s = 1; s < _NSIG; s++) {
    if (!handled[s]) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnSignal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sa.sa_mask = mask;
    if (sigaction(s, &sa, nullptr) == -1) {
      ThrowErrno(env, errno, "sigaction", Call("sigaction", {s}));
      return false;
    }
  }
  return true;
}

Napi::Value InstallHandler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t sig;
  if (!ArgSignal(info, 0, false, &sig)) return env.Undefined();
  if (pipe_write_fd.load() < 0) {
    ThrowType(env, "signalPipe() must be called before installHandler()");
    return env.Undefined();
  }
  if (handled[sig]) return env.Undefined();
  if (sigaction(sig, nullptr, &previous[sig]) == -1) {
    ThrowErrno(env, errno, "sigaction", Call("sigaction", {sig}));
    return env.Undefined();
  }
  handled[sig] = true;
  if (!InstallAll(env)) {
    handled[sig] = false;
    sigaction(sig, &previous[sig], nullptr);
  }
  return env.Undefined();
}

// Puts back the disposition that was in place before installHandler(sig).
Napi::Value RestoreHandler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t sig;
  if (!ArgSignal(info, 0, false, &sig)) return env.Undefined();
  if (!handled[sig]) return env.Undefined();
  handled[sig] = false;
  if (sigaction(sig, &previous[sig], nullptr) == -1) {
    ThrowErrno(env, errno, "sigaction", Call("sigaction", {sig}));
    return env.Undefined();
  }
  InstallAll(env);
  return env.Undefined();
}

// signalFdAdd(signo) -> fd: blocks signo on the CALLING thread and adds it
// to this process's signalfd (created on first call, non-blocking,
// close-on-exec). A signal aimed at this thread (tgsigqueue) then waits in
// the signalfd instead of running the handler: the event loop reads it with
// no signal frame, no handler, no self-pipe write. The handler stays
// installed for threads that do not block it (process-directed signals).
sigset_t fd_mask;
int signal_fd = -1;

Napi::Value SignalFdAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t sig;
  if (!ArgSignal(info, 0, false, &sig)) return env.Undefined();
  if (signal_fd < 0) sigemptyset(&fd_mask);
  sigaddset(&fd_mask, sig);
  int fd = signalfd(signal_fd, &fd_mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd == -1) {
    ThrowErrno(env, errno, "signalfd", Call("signalfd", {sig}));
    return env.Undefined();
  }
  signal_fd = fd;
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  if (sigprocmask(SIG_BLOCK, &one, nullptr) != 0) {
    ThrowErrno(env, errno, "sigprocmask", Call("sigprocmask", {sig}));
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// signalFdRemove(signo): takes signo out of the signalfd, then unblocks it
// on the calling thread (so what is still pending goes to the handler, which
// the caller restores only after this).
Napi::Value SignalFdRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t sig;
  if (!ArgSignal(info, 0, false, &sig)) return env.Undefined();
  if (signal_fd < 0 || sigismember(&fd_mask, sig) != 1) return env.Undefined();
  sigdelset(&fd_mask, sig);
  if (signalfd(signal_fd, &fd_mask, SFD_NONBLOCK | SFD_CLOEXEC) == -1) {
    ThrowErrno(env, errno, "signalfd", Call("signalfd", {sig}));
    return env.Undefined();
  }
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  if (sigprocmask(SIG_UNBLOCK, &one, nullptr) != 0) ThrowErrno(env, errno, "sigprocmask", Call("sigprocmask", {sig}));
  return env.Undefined();
}

Napi::Value OverflowCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(overflow_count.load()));
}

Napi::Array SetToArray(Napi::Env env, const sigset_t& set) {
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (int s = 1; s <= SIGRTMAX; s++)
    if (sigismember(&set, s) == 1) out.Set(n++, Napi::Number::New(env, s));
  return out;
}

// sigprocmask(how, [signo...]) -> previous mask of the calling thread.
Napi::Value Sigprocmask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t how;
  if (!ArgInt32(info, 0, "how", &how)) return env.Undefined();
  if (how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK) {
    ThrowRange(env, "Expected how to be SIG_BLOCK, SIG_UNBLOCK or SIG_SETMASK, got " + std::to_string(how));
    return env.Undefined();
  }
  if (info.Length() < 2 || !info[1].IsArray()) {
    ThrowType(env, "Expected signals to be an array of signal numbers");
    return env.Undefined();
  }
  Napi::Array list = info[1].As<Napi::Array>();
  sigset_t set, old;
  sigemptyset(&set);
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsNumber()) {
      ThrowType(env, "Expected signals to be an array of signal numbers");
      return env.Undefined();
    }
    int s = v.As<Napi::Number>().Int32Value();
    if (s < 1 || s > SIGRTMAX) {
      ThrowRange(env, "Expected a signal number from 1 to " + std::to_string(SIGRTMAX) + ", got " + std::to_string(s));
      return env.Undefined();
    }
    sigaddset(&set, s);
  }
  // sigprocmask, not pthread_sigmask: glibc 2.32 gave pthread_sigmask a new
  // symbol version (GLIBC_2.32) and the prebuild must load on glibc 2.28. On
  // Linux (glibc and musl) sigprocmask sets the calling thread's mask, as
  // pthread_sigmask does; it returns -1 and sets errno instead of returning it.
  if (sigprocmask(how, &set, &old) != 0) {
    int err = errno;
    ThrowErrno(env, err, "sigprocmask", "sigprocmask()");
    return env.Undefined();
  }
  return SetToArray(env, old);
}

Napi::Value Sigpending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sigset_t set;
  if (sigpending(&set) == -1) {
    ThrowErrno(env, errno, "sigpending", "sigpending()");
    return env.Undefined();
  }
  return SetToArray(env, set);
}

}  // namespace

void InitSignals(Napi::Env env, Napi::Object exports) {
  exports.Set("kill", Napi::Function::New(env, Kill, "kill"));
  exports.Set("killpg", Napi::Function::New(env, Killpg, "killpg"));
  exports.Set("sigqueue", Napi::Function::New(env, Sigqueue, "sigqueue"));
  exports.Set("tgkill", Napi::Function::New(env, Tgkill, "tgkill"));
  exports.Set("tgsigqueue", Napi::Function::New(env, Tgsigqueue, "tgsigqueue"));
  exports.Set("getpgid", Napi::Function::New(env, Getpgid, "getpgid"));
  exports.Set("setpgid", Napi::Function::New(env, Setpgid, "setpgid"));
  exports.Set("gettid", Napi::Function::New(env, Gettid, "gettid"));
  exports.Set("signalPipe", Napi::Function::New(env, SignalPipe, "signalPipe"));
  exports.Set("installHandler", Napi::Function::New(env, InstallHandler, "installHandler"));
  exports.Set("restoreHandler", Napi::Function::New(env, RestoreHandler, "restoreHandler"));
  exports.Set("signalFdAdd", Napi::Function::New(env, SignalFdAdd, "signalFdAdd"));
  exports.Set("signalFdRemove", Napi::Function::New(env, SignalFdRemove, "signalFdRemove"));
  exports.Set("SIGNALFD_RECORD_BYTES", Napi::Number::New(env, sizeof(struct signalfd_siginfo)));
  exports.Set("signalOverflowCount", Napi::Function::New(env, OverflowCount, "signalOverflowCount"));
  exports.Set("sigprocmask", Napi::Function::New(env, Sigprocmask, "sigprocmask"));
  exports.Set("sigpending", Napi::Function::New(env, Sigpending, "sigpending"));
  exports.Set("SIGRTMIN", Napi::Number::New(env, SIGRTMIN));
  exports.Set("SIGRTMAX", Napi::Number::New(env, SIGRTMAX));
  exports.Set("SIGNAL_RECORD_BYTES", Napi::Number::New(env, sizeof(SignalRecord)));
}

}  // namespace ipc
