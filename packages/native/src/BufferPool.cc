// BufferPool.cc: Buffers for large received messages whose memory is kept
// warm for the next one.
//
// A receiver that delivers each 1 MiB message in a new Buffer.allocUnsafe()
// makes glibc hand out the top of the heap, and when V8 collects the Buffer,
// glibc trims that top back to the kernel (its trim threshold follows the
// mmap threshold), so the next message faults on every page of fresh memory:
// measured 155-208 minor faults per MiB and 476 MB/s, against ~3000 MB/s for
// the same copy into memory already mapped (docs/design.md, "Large
// messages"). allocPooled(size) returns an external Buffer over a block from
// a free list; its finalizer (run by Node on the owning thread once V8 has
// collected the Buffer's ArrayBuffer) puts the block back. A block is reused
// only after that, so no live Buffer ever sees another message's bytes, and
// the Buffer's length (and its ArrayBuffer's) is the message's, never the
// block's capacity.
//
// Blocks are power-of-two classes from kMinBlock to kMaxBlock; at most
// kMaxPooled bytes of free blocks are kept (process-wide, behind a mutex:
// worker threads share the pool), the rest freed. Each live block is
// reported to V8 as external memory, so collections keep pace with it.
// Where external buffers are not allowed (a V8 sandbox, as in Electron),
// allocPooled returns undefined and the caller allocates as before.
#include "BufferPool.h"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "Errors.h"

namespace ipc {
namespace {

constexpr size_t kMinShift = 17;                  // 128 KiB: glibc mmaps from here (fresh pages)
constexpr size_t kMaxShift = 24;                  // 16 MiB
constexpr size_t kClasses = kMaxShift - kMinShift + 1;
constexpr size_t kMaxPooled = size_t{32} << 20;  // free bytes kept at most

std::mutex pool_mutex;
std::vector<void*> free_blocks[kClasses];
size_t pooled_bytes = 0;
double allocated_count = 0;  // blocks taken from malloc
double reused_count = 0;     // blocks taken from the free lists

size_t ClassOf(size_t size) {
  size_t shift = kMinShift;
  while ((size_t{1} << shift) < size) shift++;
  return shift - kMinShift;
}

// Keeps a free block (within kMaxPooled) or frees it.
void Shelve(size_t cls, void* data) {
  const size_t capacity = size_t{1} << (cls + kMinShift);
  {
    std::lock_guard<std::mutex> lock(pool_mutex);
    if (pooled_bytes + capacity <= kMaxPooled) {
      free_blocks[cls].push_back(data);
      pooled_bytes += capacity;
      return;
    }
  }
  std::free(data);
}

// The Buffer's finalizer: V8 collected it, so nothing can see the block any more.
void ReturnBlock(napi_env env, void* data, void* hint) {
  const size_t cls = reinterpret_cast<uintptr_t>(hint);
  int64_t unused;
  napi_adjust_external_memory(env, -static_cast<int64_t>(size_t{1} << (cls + kMinShift)), &unused);  // best effort at teardown
  Shelve(cls, data);
}

Napi::Value AllocPooled(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t size;
  if (!ArgInt32(info, 0, "size", &size)) return env.Undefined();
  if (size < 1 || static_cast<size_t>(size) > (size_t{1} << kMaxShift)) {
    ThrowRange(env, "allocPooled size must be 1 to " + std::to_string(size_t{1} << kMaxShift) + ", got " + std::to_string(size));
    return env.Undefined();
  }
  const size_t cls = ClassOf(static_cast<size_t>(size));
  const size_t capacity = size_t{1} << (cls + kMinShift);
  void* data = nullptr;
  {
    std::lock_guard<std::mutex> lock(pool_mutex);
    if (!free_blocks[cls].empty()) {
      data = free_blocks[cls].back();
      free_blocks[cls].pop_back();
      pooled_bytes -= capacity;
      reused_count++;
    }
  }
  if (data == nullptr) {
    data = std::malloc(capacity);
    if (data == nullptr) {
      ThrowErrno(env, ENOMEM, "malloc", "allocPooled(" + std::to_string(size) + ")");
      return env.Undefined();
    }
    std::lock_guard<std::mutex> lock(pool_mutex);
    allocated_count++;
  }
  napi_value buffer;
  napi_status status = napi_create_external_buffer(env, static_cast<size_t>(size), data, ReturnBlock,
                                                   reinterpret_cast<void*>(static_cast<uintptr_t>(cls)), &buffer);
  if (status != napi_ok) {
    // Not allowed here (napi_no_external_buffers_allowed), or out of memory:
    // the block goes back and the caller allocates a plain Buffer.
    Shelve(cls, data);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return env.Undefined();
  }
  int64_t unused;
  napi_adjust_external_memory(env, static_cast<int64_t>(capacity), &unused);
  return Napi::Value(env, buffer);
}

// {pooledBytes, freeBlocks, allocated, reused, minBlock, maxBlock, maxPooled}: for tests and stats.
Napi::Value PoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::lock_guard<std::mutex> lock(pool_mutex);
  size_t blocks = 0;
  for (const auto& list : free_blocks) blocks += list.size();
  o.Set("pooledBytes", Napi::Number::New(env, static_cast<double>(pooled_bytes)));
  o.Set("freeBlocks", Napi::Number::New(env, static_cast<double>(blocks)));
  o.Set("allocated", Napi::Number::New(env, allocated_count));
  o.Set("reused", Napi::Number::New(env, reused_count));
  o.Set("minBlock", Napi::Number::New(env, static_cast<double>(size_t{1} << kMinShift)));
  o.Set("maxBlock", Napi::Number::New(env, static_cast<double>(size_t{1} << kMaxShift)));
  o.Set("maxPooled", Napi::Number::New(env, static_cast<double>(kMaxPooled)));
  return o;
}

}  // namespace

void InitBufferPool(Napi::Env env, Napi::Object exports) {
  exports.Set("allocPooled", Napi::Function::New(env, AllocPooled, "allocPooled"));
  exports.Set("poolStats", Napi::Function::New(env, PoolStats, "poolStats"));
}

}  // namespace ipc
