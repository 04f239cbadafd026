// Shm.h: System V shared memory (ftok, shmget, shmat, shmdt, shmctl).
#pragma once
#include <napi.h>

namespace ipc {
void InitShm(Napi::Env env, Napi::Object exports);
}
