// Pipes.h: pipe(2), mkfifo(3) and the one-byte doorbell write.
#pragma once
#include <napi.h>

namespace ipc {
void InitPipes(Napi::Env env, Napi::Object exports);
}
