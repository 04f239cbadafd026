// Binding.cc: the addon's exports, nothing else.
#include <napi.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "AtExit.h"
#include "BufferPool.h"
#include "Pipes.h"
#include "Shm.h"
#include "Signals.h"
#include "Watch.h"

namespace {

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* name, double v) { c.Set(name, Napi::Number::New(env, v)); };
  set("IPC_PRIVATE", IPC_PRIVATE);
  set("IPC_CREAT", IPC_CREAT);
  set("IPC_EXCL", IPC_EXCL);
  set("IPC_STAT", IPC_STAT);
  set("IPC_SET", IPC_SET);
  set("IPC_RMID", IPC_RMID);
  set("SHM_DEST", SHM_DEST);
  set("SIG_BLOCK", SIG_BLOCK);
  set("SIG_UNBLOCK", SIG_UNBLOCK);
  set("SIG_SETMASK", SIG_SETMASK);
  set("SI_USER", SI_USER);
  set("SI_KERNEL", SI_KERNEL);
  set("SI_QUEUE", SI_QUEUE);
  set("SI_TKILL", SI_TKILL);
  set("SIGRTMIN", SIGRTMIN);
  set("SIGRTMAX", SIGRTMAX);
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ipc::InitShm(env, exports);
  ipc::InitSignals(env, exports);
  ipc::InitPipes(env, exports);
  ipc::InitAtExit(env, exports);
  ipc::InitWatch(env, exports);
  ipc::InitBufferPool(env, exports);
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(ipc_native, Init)
