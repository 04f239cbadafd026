// AtExit.cc: exit actions, run natively when an environment is torn down.
//
// A worker_thread stopped with worker.terminate() runs no more JavaScript
// (process.on('exit') does not fire in it), yet Node-API environment cleanup
// hooks do run: on a worker's teardown (terminate or normal end) and on the
// main thread's when the process ends normally. Each environment that
// registers an action gets one list and one cleanup hook; the hook runs the
// list in registration order with plain system calls only:
//   store:  shmat(shmid) afresh (the JS mapping may already be detached or
//           finalised), bounds and alignment check against IPC_STAT's size,
//           a sequentially consistent compare-and-swap, shmdt. A segment that
//           is gone or refused (EINVAL, EIDRM, EACCES) is skipped silently.
//   unlink: unlink(path); ENOENT and every other error are ignored.
//
// process.exit() (and an uncaught exception) on the main thread ends the
// process with exit(3) without tearing the environment down, so cleanup
// hooks do not run there: an atexit(3) handler runs whatever lists are still
// registered (in practice the main thread's: Node stops and joins every
// worker before it calls exit).
// Actions are taken out of the registry under a mutex before they run, so
// each runs at most once. Nothing runs on SIGKILL, a crash, or _exit.
#include "AtExit.h"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "Errors.h"

namespace ipc {
namespace {

struct Action {
  double handle;
  bool store;  // true: compare-and-swap; false: unlink
  int32_t shmid;
  int64_t offset;
  int32_t width;  // 4 or 8
  uint64_t expected;
  uint64_t desired;
  std::string path;
};

struct EnvActions {
  std::vector<Action> actions;
};

// Every environment (main thread, each worker) with a live list. Touched by
// JS calls on the env's own thread, by its cleanup hook, and by atexit.
std::mutex registry_mutex;
std::unordered_map<napi_env, EnvActions*>* registry = new std::unordered_map<napi_env, EnvActions*>();
double next_handle = 1;  // under registry_mutex; unique across environments
bool atexit_installed = false;

void RunStore(const Action& a) {
  void* addr = shmat(a.shmid, nullptr, 0);
  if (addr == reinterpret_cast<void*>(-1)) return;  // gone (EINVAL/EIDRM) or refused (EACCES)
  struct shmid_ds ds;
  if (shmctl(a.shmid, IPC_STAT, &ds) == 0 && a.offset >= 0 &&
      static_cast<uint64_t>(a.offset) + static_cast<uint64_t>(a.width) <= ds.shm_segsz && a.offset % a.width == 0) {
    char* p = static_cast<char*>(addr) + a.offset;
    if (a.width == 4) {
      uint32_t expected = static_cast<uint32_t>(a.expected);
      __atomic_compare_exchange_n(reinterpret_cast<uint32_t*>(p), &expected, static_cast<uint32_t>(a.desired), false,
                                  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    } else {
      uint64_t expected = a.expected;
      __atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(p), &expected, a.desired, false, __ATOMIC_SEQ_CST,
                                  __ATOMIC_SEQ_CST);
    }
  }
  shmdt(addr);
}

void RunList(const std::vector<Action>& actions) {
  int saved = errno;
  for (const Action& a : actions) {
    if (a.store) RunStore(a);
    else unlink(a.path.c_str());
  }
  errno = saved;
}

// The env cleanup hook: arg is the env whose list to run.
void OnEnvTeardown(void* arg) {
  napi_env env = static_cast<napi_env>(arg);
  EnvActions* list = nullptr;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry->find(env);
    if (it == registry->end()) return;
    list = it->second;
    registry->erase(it);
  }
  RunList(list->actions);
  delete list;
}

// The atexit handler. It empties the lists but leaves them registered: an
// environment keeps exactly one list and one cleanup hook for its lifetime.
void OnProcessExit() {
  std::vector<std::vector<Action>> lists;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    for (auto& entry : *registry) lists.push_back(std::move(entry.second->actions));
    for (auto& entry : *registry) entry.second->actions.clear();
  }
  for (const auto& actions : lists) RunList(actions);
}

// Adds an action to this env's list (creating the list and its cleanup hook
// on first use); returns its handle, or 0 with a JS error pending. Only the
// env's own thread adds to its list, so the lookup and the insertion need
// not share one critical section.
double Add(Napi::Env env, Action action) {
  std::unique_lock<std::mutex> lock(registry_mutex);
  if (!atexit_installed) {
    if (std::atexit(OnProcessExit) != 0) {
      Napi::Error::New(env, "atexit() failed").ThrowAsJavaScriptException();
      return 0;
    }
    atexit_installed = true;
  }
  auto it = registry->find(env);
  if (it == registry->end()) {
    lock.unlock();
    if (napi_add_env_cleanup_hook(env, OnEnvTeardown, static_cast<napi_env>(env)) != napi_ok) {
      Napi::Error::New(env, "napi_add_env_cleanup_hook failed").ThrowAsJavaScriptException();
      return 0;
    }
    lock.lock();
    it = registry->emplace(env, new EnvActions()).first;
  }
  double handle = next_handle++;
  action.handle = handle;
  it->second->actions.push_back(std::move(action));
  return handle;
}

// A 4- or 8-byte value given as a BigInt: the low `width` bytes, or false
// (with an error pending) if it does not fit as signed or unsigned.
bool ArgWord(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t width, uint64_t* out) {
  if (info.Length() <= i || !info[i].IsBigInt()) {
    ThrowType(info.Env(), std::string("Expected ") + name + " to be a bigint");
    return false;
  }
  Napi::BigInt big = info[i].As<Napi::BigInt>();
  bool lossless;
  uint64_t u = big.Uint64Value(&lossless);
  if (!lossless) {
    int64_t s = big.Int64Value(&lossless);
    if (!lossless) {
      ThrowRange(info.Env(), std::string("Expected ") + name + " to fit in 64 bits");
      return false;
    }
    u = static_cast<uint64_t>(s);
    if (width == 4 && s < INT32_MIN) lossless = false;
  } else if (width == 4 && u > UINT32_MAX) {
    lossless = false;
  }
  if (!lossless) {
    ThrowRange(info.Env(), std::string("Expected ") + name + " to fit in 32 bits");
    return false;
  }
  *out = width == 4 ? (u & 0xffffffffu) : u;
  return true;
}

// addExitStore(shmid, byteOffset, width, expected: bigint, desired: bigint) -> handle
Napi::Value AddExitStore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Action a{};
  a.store = true;
  if (!ArgInt32(info, 0, "shmid", &a.shmid) || !ArgInt64(info, 1, "byteOffset", &a.offset) ||
      !ArgInt32(info, 2, "width", &a.width))
    return env.Undefined();
  if (a.width != 4 && a.width != 8) {
    ThrowRange(env, "Expected width to be 4 or 8, got " + std::to_string(a.width));
    return env.Undefined();
  }
  if (!ArgWord(info, 3, "expected", a.width, &a.expected) || !ArgWord(info, 4, "desired", a.width, &a.desired))
    return env.Undefined();
  if (a.shmid < 0) {
    ThrowRange(env, "Expected shmid to be >= 0");
    return env.Undefined();
  }
  if (a.offset < 0 || a.offset % a.width != 0) {
    ThrowRange(env, "Expected byteOffset to be a non-negative multiple of " + std::to_string(a.width) + ", got " +
                        std::to_string(a.offset));
    return env.Undefined();
  }
  // The segment must exist now and hold the word (checked again at teardown).
  struct shmid_ds ds;
  if (shmctl(a.shmid, IPC_STAT, &ds) == -1) {
    ThrowErrno(env, errno, "shmctl", "addExitStore: shmctl(" + std::to_string(a.shmid) + ", IPC_STAT)");
    return env.Undefined();
  }
  if (static_cast<uint64_t>(a.offset) + static_cast<uint64_t>(a.width) > ds.shm_segsz) {
    ThrowRange(env, "addExitStore: a " + std::to_string(a.width) + "-byte word at " + std::to_string(a.offset) +
                        " is outside the " + std::to_string(ds.shm_segsz) + "-byte segment " + std::to_string(a.shmid));
    return env.Undefined();
  }
  double handle = Add(env, std::move(a));
  if (handle == 0) return env.Undefined();
  return Napi::Number::New(env, handle);
}

// addExitUnlink(path) -> handle
Napi::Value AddExitUnlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Action a{};
  a.store = false;
  if (!ArgString(info, 0, "path", &a.path)) return env.Undefined();
  if (a.path.empty() || a.path.find('\0') != std::string::npos) {
    ThrowType(env, "Expected path to be a non-empty string without NUL bytes");
    return env.Undefined();
  }
  double handle = Add(env, std::move(a));
  if (handle == 0) return env.Undefined();
  return Napi::Number::New(env, handle);
}

// cancelExit(handle) -> true if this environment had it pending (now removed).
Napi::Value CancelExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t handle;
  if (!ArgInt64(info, 0, "handle", &handle)) return env.Undefined();
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry->find(env);
  if (it == registry->end()) return Napi::Boolean::New(env, false);
  std::vector<Action>& actions = it->second->actions;
  for (auto a = actions.begin(); a != actions.end(); ++a) {
    if (a->handle == static_cast<double>(handle)) {
      actions.erase(a);
      return Napi::Boolean::New(env, true);
    }
  }
  return Napi::Boolean::New(env, false);
}

// pendingExitActions() -> how many actions this environment has registered.
Napi::Value PendingExitActions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry->find(env);
  return Napi::Number::New(env, it == registry->end() ? 0 : static_cast<double>(it->second->actions.size()));
}

}  // namespace

void InitAtExit(Napi::Env env, Napi::Object exports) {
  exports.Set("addExitStore", Napi::Function::New(env, AddExitStore, "addExitStore"));
  exports.Set("addExitUnlink", Napi::Function::New(env, AddExitUnlink, "addExitUnlink"));
  exports.Set("cancelExit", Napi::Function::New(env, CancelExit, "cancelExit"));
  exports.Set("pendingExitActions", Napi::Function::New(env, PendingExitActions, "pendingExitActions"));
}

}  // namespace ipc
