// AtExit.h: exit actions (a compare-and-swap on a shm word, an unlink) that
// run natively when the Node environment is torn down.
#pragma once
#include <napi.h>

namespace ipc {
void InitAtExit(Napi::Env env, Napi::Object exports);
}
