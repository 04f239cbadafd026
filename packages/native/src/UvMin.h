// UvMin.h: the few libuv declarations Watch.cc uses, declared here because
// the build is offline and uses node-api-headers, which has no uv.h (see
// CMakeLists.txt). The functions are libuv 1.x's public API, exported by
// every Node binary for addons (napi_get_uv_event_loop hands out the loop),
// and libuv keeps its ABI within 1.x. A uv_poll_t is opaque to us: we give
// libuv UV_POLL_STORAGE bytes, 8-aligned, well above its size (160 bytes in
// libuv 1.46 on x86-64 and aarch64), and find our own state from the
// handle's address (the storage is the first member of our struct), so no
// field offset is assumed.
#pragma once

#include <cstddef>

extern "C" {
struct uv_loop_s;
typedef struct uv_loop_s uv_loop_t;
struct uv_handle_s;
typedef struct uv_handle_s uv_handle_t;
struct uv_poll_s;
typedef struct uv_poll_s uv_poll_t;

typedef void (*uv_close_cb)(uv_handle_t* handle);
typedef void (*uv_poll_cb)(uv_poll_t* handle, int status, int events);

int uv_poll_init(uv_loop_t* loop, uv_poll_t* handle, int fd);
int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t* handle);
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
void uv_ref(uv_handle_t* handle);
void uv_unref(uv_handle_t* handle);
}

namespace ipc {
// libuv's UV_READABLE.
constexpr int kUvReadable = 1;
// Bytes reserved for a uv_poll_t.
constexpr std::size_t kUvPollStorage = 512;
}  // namespace ipc
