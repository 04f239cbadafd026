// Signals.h: sending signals, catching them through a self-pipe, masks.
#pragma once
#include <napi.h>

namespace ipc {
void InitSignals(Napi::Env env, Napi::Object exports);
}
