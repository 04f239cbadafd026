// Shm.cc: System V shared memory.
//
// shmat() returns an external ArrayBuffer over the mapping. Who detaches:
//   - shmdt(buffer) first detaches the ArrayBuffer (every view of it becomes
//     length 0, so a stale view can never touch unmapped memory), then calls
//     shmdt(2). A second shmdt of the same (now detached) buffer is a no-op.
//   - a buffer that is only dropped is detached by its finalizer at GC.
// A process-wide registry maps each live mapping address to its Mapping
// record. The record is the finalizer's hint and is freed only by the
// finalizer; `attached` says whether the mapping is still ours to detach, so a
// late finalizer never detaches a newer mapping that reuses the address.
#include "Shm.h"

#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "Errors.h"

namespace ipc {
namespace {

struct Mapping {
  void* addr;
  bool attached;
};

std::mutex registry_mutex;
std::unordered_map<void*, Mapping*> registry;

std::string Format(const char* fmt, unsigned v) {
  char buf[32];
  snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void FinalizeMapping(Napi::Env, void* data, Mapping* m) {
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (m->attached) {
      registry.erase(m->addr);
      m->attached = false;
      shmdt(m->addr);
    }
  }
  delete m;
}

Napi::Value Ftok(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int32_t proj;
  if (!ArgString(info, 0, "path", &path) || !ArgInt32(info, 1, "projId", &proj)) return env.Undefined();
  if (proj < 1 || proj > 255) {
    ThrowRange(env, "Expected projId to be an integer from 1 to 255 (ftok uses its low 8 bits)");
    return env.Undefined();
  }
  key_t key = ftok(path.c_str(), proj);
  if (key == -1) {
    ThrowErrno(env, errno, "ftok", "ftok(" + path + ", " + std::to_string(proj) + ")");
    return env.Undefined();
  }
  return Napi::Number::New(env, key);
}

Napi::Value Shmget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t key, flags;
  int64_t size;
  if (!ArgInt32(info, 0, "key", &key) || !ArgInt64(info, 1, "size", &size) || !ArgInt32(info, 2, "flags", &flags))
    return env.Undefined();
  if (size < 0) {
    ThrowRange(env, "Expected size to be >= 0");
    return env.Undefined();
  }
  int id = shmget(key, static_cast<size_t>(size), flags);
  if (id == -1) {
    ThrowErrno(env, errno, "shmget",
               "shmget(key=" + Format("0x%x", static_cast<unsigned>(key)) + ", size=" + std::to_string(size) +
                   ", flags=" + Format("0o%o", static_cast<unsigned>(flags)) + ")");
    return env.Undefined();
  }
  return Napi::Number::New(env, id);
}

// Attaches segment `id` with `flags` (0 or SHM_RDONLY); on success stores the
// address and the segment's size. On failure a JS error is pending.
bool Attach(Napi::Env env, int32_t id, int flags, void** addr, size_t* size) {
  std::string what = "shmat(" + std::to_string(id) + (flags & SHM_RDONLY ? ", SHM_RDONLY)" : ")");
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) == -1) {
    ThrowErrno(env, errno, "shmctl", what + ": reading the segment size with IPC_STAT");
    return false;
  }
  *addr = shmat(id, nullptr, flags);
  if (*addr == reinterpret_cast<void*>(-1)) {
    ThrowErrno(env, errno, "shmat", what);
    return false;
  }
  *size = ds.shm_segsz;
  return true;
}

Napi::Value Shmat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t id;
  void* addr;
  size_t size;
  if (!ArgInt32(info, 0, "shmid", &id) || !Attach(env, id, 0, &addr, &size)) return env.Undefined();
  Mapping* m = new Mapping{addr, true};
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry[addr] = m;
  }
  return Napi::ArrayBuffer::New(env, addr, size, FinalizeMapping, m);
}

// Read-only attachments (SHM_RDONLY) are NOT handed out as ArrayBuffers: V8
// has no read-only ArrayBuffer, and one JS write through a view would kill
// the process with SIGSEGV. They are an External that JS reads by copying,
// with bounds checked here.
struct ReadOnlyMapping {
  void* addr;
  size_t size;
};

void FinalizeReadOnly(Napi::Env, ReadOnlyMapping* m) {
  if (m->addr != nullptr) shmdt(m->addr);
  delete m;
}

Napi::Value ShmatReadOnly(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t id;
  void* addr;
  size_t size;
  if (!ArgInt32(info, 0, "shmid", &id) || !Attach(env, id, SHM_RDONLY, &addr, &size)) return env.Undefined();
  return Napi::External<ReadOnlyMapping>::New(env, new ReadOnlyMapping{addr, size}, FinalizeReadOnly);
}

ReadOnlyMapping* ArgReadOnly(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    ThrowType(info.Env(), "Expected a read-only mapping handle");
    return nullptr;
  }
  return info[0].As<Napi::External<ReadOnlyMapping>>().Data();
}

// readOnlyRead(handle, offset, length) -> Buffer (a copy).
Napi::Value ReadOnlyRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadOnlyMapping* m = ArgReadOnly(info);
  int64_t offset, length;
  if (m == nullptr || !ArgInt64(info, 1, "offset", &offset) || !ArgInt64(info, 2, "length", &length)) return env.Undefined();
  if (m->addr == nullptr) {
    ThrowType(env, "the read-only mapping is detached");
    return env.Undefined();
  }
  if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > m->size) {
    ThrowRange(env, "read of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                        " is outside the " + std::to_string(m->size) + "-byte segment");
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(m->addr) + offset, static_cast<size_t>(length));
}

Napi::Value ReadOnlyDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadOnlyMapping* m = ArgReadOnly(info);
  if (m == nullptr) return env.Undefined();
  if (m->addr == nullptr) return Napi::Boolean::New(env, false);
  void* addr = m->addr;
  m->addr = nullptr;
  if (shmdt(addr) == -1) {
    ThrowErrno(env, errno, "shmdt", "shmdt() of a read-only mapping");
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// shmdt(buffer) -> true if it detached, false if the buffer was already detached.
Napi::Value Shmdt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowType(env, "Expected buffer to be the ArrayBuffer returned by shmat()");
    return env.Undefined();
  }
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  void* addr = buffer.Data();
  if (buffer.IsDetached() || addr == nullptr) return Napi::Boolean::New(env, false);
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry.find(addr);
    if (it == registry.end()) {
      ThrowType(env, "Expected buffer to be the ArrayBuffer returned by shmat() (this one is not a shm mapping)");
      return env.Undefined();
    }
    it->second->attached = false;  // the finalizer (now or later) only frees the record
    registry.erase(it);
  }
  buffer.Detach();  // views become empty before the memory goes away
  if (shmdt(addr) == -1) {
    ThrowErrno(env, errno, "shmdt", "shmdt()");
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL
#endif

// prefault(view) -> bool: madvise(MADV_POPULATE_WRITE) over the pages of a
// view of a shmat() mapping, so that this process's first write and read of
// each page does not take a page fault (each costs ~10 us on a VM; a ring's
// first lap takes one every 4 KiB). Best effort: false when the kernel lacks
// the advice (< 5.14), the range is not a mapping of ours, or memory is
// short; the pages then fault in on first use, as before.
Napi::Value Prefault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    ThrowType(env, "Expected view to be a typed array over a shmat() mapping");
    return env.Undefined();
  }
  // The C API: it also takes views of a SharedArrayBuffer (never a mapping of ours).
  napi_typedarray_type type;
  size_t count, offset;
  void* first = nullptr;
  napi_value ab;
  if (napi_get_typedarray_info(env, info[0], &type, &count, &first, &ab, &offset) != napi_ok) {
    ThrowType(env, "Expected view to be a typed array over a shmat() mapping");
    return env.Undefined();
  }
  size_t bytes = info[0].As<Napi::TypedArray>().ByteLength();
  if (first == nullptr || bytes == 0) return Napi::Boolean::New(env, false);
  char* base = static_cast<char*>(first) - offset;
  {
    // Only our own read-write mappings: the advice writes (as faults do) and
    // must never reach memory that is not a segment's.
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (registry.find(base) == registry.end()) return Napi::Boolean::New(env, false);
  }
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t start = reinterpret_cast<uintptr_t>(first) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(static_cast<char*>(first) + bytes) + page - 1) & ~(page - 1);
  // (a mapping covers whole pages: rounding stays inside it)
  bool ok = madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE) == 0;
  return Napi::Boolean::New(env, ok);
}

Napi::Object StatToObject(Napi::Env env, const struct shmid_ds& ds) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("key", Napi::Number::New(env, ds.shm_perm.__key));
  o.Set("size", Napi::Number::New(env, static_cast<double>(ds.shm_segsz)));
  o.Set("mode", Napi::Number::New(env, ds.shm_perm.mode & 0777));
  o.Set("dest", Napi::Boolean::New(env, (ds.shm_perm.mode & SHM_DEST) != 0));
  o.Set("locked", Napi::Boolean::New(env, (ds.shm_perm.mode & SHM_LOCKED) != 0));
  o.Set("uid", Napi::Number::New(env, ds.shm_perm.uid));
  o.Set("gid", Napi::Number::New(env, ds.shm_perm.gid));
  o.Set("cuid", Napi::Number::New(env, ds.shm_perm.cuid));
  o.Set("cgid", Napi::Number::New(env, ds.shm_perm.cgid));
  o.Set("cpid", Napi::Number::New(env, ds.shm_cpid));
  o.Set("lpid", Napi::Number::New(env, ds.shm_lpid));
  o.Set("nattch", Napi::Number::New(env, static_cast<double>(ds.shm_nattch)));
  o.Set("atime", Napi::Number::New(env, static_cast<double>(ds.shm_atime)));
  o.Set("dtime", Napi::Number::New(env, static_cast<double>(ds.shm_dtime)));
  o.Set("ctime", Napi::Number::New(env, static_cast<double>(ds.shm_ctime)));
  return o;
}

// shmctl(shmid, cmd[, {uid, gid, mode}]): IPC_STAT -> object, IPC_SET, IPC_RMID.
Napi::Value Shmctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t id, cmd;
  if (!ArgInt32(info, 0, "shmid", &id) || !ArgInt32(info, 1, "cmd", &cmd)) return env.Undefined();
  std::string what = "shmctl(" + std::to_string(id);
  struct shmid_ds ds;
  switch (cmd) {
    case IPC_STAT:
      if (shmctl(id, IPC_STAT, &ds) == -1) {
        ThrowErrno(env, errno, "shmctl", what + ", IPC_STAT)");
        return env.Undefined();
      }
      return StatToObject(env, ds);
    case IPC_RMID:
      if (shmctl(id, IPC_RMID, nullptr) == -1) {
        ThrowErrno(env, errno, "shmctl", what + ", IPC_RMID)");
        return env.Undefined();
      }
      return env.Undefined();
    case IPC_SET: {
      if (info.Length() < 3 || !info[2].IsObject()) {
        ThrowType(env, "Expected IPC_SET's third argument to be an object {uid?, gid?, mode?}");
        return env.Undefined();
      }
      Napi::Object set = info[2].As<Napi::Object>();
      if (shmctl(id, IPC_STAT, &ds) == -1) {
        ThrowErrno(env, errno, "shmctl", what + ", IPC_STAT) before IPC_SET");
        return env.Undefined();
      }
      const char* fields[] = {"uid", "gid", "mode"};
      for (const char* f : fields) {
        Napi::Value v = set.Get(f);
        if (v.IsUndefined()) continue;
        if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0 || v.As<Napi::Number>().DoubleValue() > 4294967295.0) {
          ThrowType(env, std::string("Expected IPC_SET field ") + f + " to be a non-negative integer");
          return env.Undefined();
        }
        uint32_t n = v.As<Napi::Number>().Uint32Value();
        if (f[0] == 'u') ds.shm_perm.uid = n;
        else if (f[0] == 'g') ds.shm_perm.gid = n;
        else ds.shm_perm.mode = (ds.shm_perm.mode & ~0777) | (n & 0777);
      }
      if (shmctl(id, IPC_SET, &ds) == -1) {
        ThrowErrno(env, errno, "shmctl", what + ", IPC_SET)");
        return env.Undefined();
      }
      return env.Undefined();
    }
    default:
      ThrowRange(env, "Expected cmd to be IPC_STAT, IPC_SET or IPC_RMID, got " + std::to_string(cmd));
      return env.Undefined();
  }
}

}  // namespace

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("ftok", Napi::Function::New(env, Ftok, "ftok"));
  exports.Set("shmget", Napi::Function::New(env, Shmget, "shmget"));
  exports.Set("shmat", Napi::Function::New(env, Shmat, "shmat"));
  exports.Set("shmdt", Napi::Function::New(env, Shmdt, "shmdt"));
  exports.Set("shmatReadOnly", Napi::Function::New(env, ShmatReadOnly, "shmatReadOnly"));
  exports.Set("readOnlyRead", Napi::Function::New(env, ReadOnlyRead, "readOnlyRead"));
  exports.Set("readOnlyDetach", Napi::Function::New(env, ReadOnlyDetach, "readOnlyDetach"));
  exports.Set("shmctl", Napi::Function::New(env, Shmctl, "shmctl"));
  exports.Set("prefault", Napi::Function::New(env, Prefault, "prefault"));
}

}  // namespace ipc
