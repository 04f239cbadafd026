// BufferPool.h: Buffers for large received messages, reused once collected (BufferPool.cc).
#pragma once
#include <napi.h>

namespace ipc {
void InitBufferPool(Napi::Env env, Napi::Object exports);
}
