// Watch.h: a readable-fd watcher on the event loop, drained in C++ (Watch.cc).
#pragma once
#include <napi.h>

namespace ipc {
void InitWatch(Napi::Env env, Napi::Object exports);
}
