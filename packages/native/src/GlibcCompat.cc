// GlibcCompat.cc: compiled only into the glibc prebuilds (linux-x64, linux-arm64)
// (IPC_NATIVE_GLIBC_COMPAT, see CMakeLists.txt). The prebuild links libstdc++
// and libgcc statically, and the archives built against this glibc (2.36)
// reference symbols newer than GLIBC_2.28, the oldest glibc the prebuild must
// load on. Each is replaced here by a hidden definition, or pinned to its
// GLIBC_2.2.5 version; test/prebuild.test.ts checks the result with objdump -T.
//   __libc_single_threaded (GLIBC_2.32, libstdc++ refcounts): always 0, i.e.
//     "maybe multi-threaded", which is the safe answer (Node has threads).
//   arc4random (GLIBC_2.36, std::random_device): getrandom (GLIBC_2.25).
//   _dl_find_object (GLIBC_2.35, libgcc's unwinder): dl_iterate_phdr.
//   pthread_once, __pthread_key_create (GLIBC_2.34, libstdc++'s gthreads):
//     the architecture's base versions (GLIBC_2.2.5 on x86-64, GLIBC_2.17
//     on aarch64), through -Wl,--wrap.
#ifdef IPC_NATIVE_GLIBC_COMPAT

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>

#define IPC_HIDDEN __attribute__((visibility("hidden")))

extern "C" {

IPC_HIDDEN char __libc_single_threaded = 0;

IPC_HIDDEN uint32_t arc4random(void) noexcept {
  uint32_t v = 0;
  for (;;) {
    ssize_t n = getrandom(&v, sizeof v, 0);
    if (n == static_cast<ssize_t>(sizeof v)) return v;
    if (n < 0 && errno == EINTR) continue;
    // No getrandom (kernel < 3.17): a weak value rather than none.
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint32_t>(ts.tv_nsec) ^ static_cast<uint32_t>(ts.tv_sec) ^ v;
  }
}

namespace {
struct FindContext {
  uintptr_t pc;
  struct dl_find_object* out;
  bool found;
};

int FindObject(struct dl_phdr_info* info, size_t, void* data) {
  auto* ctx = static_cast<FindContext*>(data);
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  bool inside = false;
  const ElfW(Phdr)* eh = nullptr;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& p = info->dlpi_phdr[i];
    if (p.p_type == PT_LOAD) {
      uintptr_t start = info->dlpi_addr + p.p_vaddr;
      uintptr_t end = start + p.p_memsz;
      if (start < lo) lo = start;
      if (end > hi) hi = end;
      if (ctx->pc >= start && ctx->pc < end) inside = true;
    } else if (p.p_type == PT_GNU_EH_FRAME) {
      eh = &p;
    }
  }
  if (!inside) return 0;
  std::memset(ctx->out, 0, sizeof *ctx->out);
  ctx->out->dlfo_map_start = reinterpret_cast<void*>(lo);
  ctx->out->dlfo_map_end = reinterpret_cast<void*>(hi);
  ctx->out->dlfo_eh_frame = eh != nullptr ? reinterpret_cast<void*>(info->dlpi_addr + eh->p_vaddr) : nullptr;
  ctx->found = true;
  return 1;
}
}  // namespace

IPC_HIDDEN int _dl_find_object(void* pc, struct dl_find_object* result) noexcept {
  FindContext ctx{reinterpret_cast<uintptr_t>(pc), result, false};
  dl_iterate_phdr(FindObject, &ctx);
  return ctx.found ? 0 : -1;
}

int ipc_pthread_once_base(pthread_once_t* once, void (*fn)(void));
int ipc_pthread_key_create_base(pthread_key_t* key, void (*destructor)(void*));
#if defined(__x86_64__)
#define IPC_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define IPC_GLIBC_BASE "GLIBC_2.17"
#else
#error "GlibcCompat.cc: no base glibc version known for this architecture"
#endif
__asm__(".symver ipc_pthread_once_base,pthread_once@" IPC_GLIBC_BASE);
__asm__(".symver ipc_pthread_key_create_base,__pthread_key_create@" IPC_GLIBC_BASE);

IPC_HIDDEN int __wrap_pthread_once(pthread_once_t* once, void (*fn)(void)) {
  return ipc_pthread_once_base(once, fn);
}
IPC_HIDDEN int __wrap___pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) {
  return ipc_pthread_key_create_base(key, destructor);
}

}  // extern "C"

#endif  // IPC_NATIVE_GLIBC_COMPAT
