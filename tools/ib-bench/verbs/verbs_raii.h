// RAII for libibverbs handles: each destroys its handle once (a failure to destroy is reported on
// stderr, never thrown), move-only. Not thread-safe.
#pragma once

#include <infiniband/verbs.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tern/common/status.h"

namespace tern::ibbench {

/// The message every "no RDMA devices" error starts with (the CLI maps it to exit code 3).
inline constexpr std::string_view kNoRdmaDevices = "no RDMA devices";
/// Whether `status` is the "no RDMA devices" error.
bool is_no_rdma(const Status& status);

/// What ibv_get_device_list's outcome means: OK when it listed devices; otherwise the "no RDMA
/// devices: ..." error for a NULL list (`err`: its errno; ENOSYS = kernel without RDMA) or an
/// empty one. Pure, so both no-device cases are tested on any machine.
Status device_list_outcome(bool list_is_null, int err, int count);

namespace detail {
void report_destroy_failure(const char* what, int rc);
template <typename T, int (*Destroy)(T*)>
struct VerbsDeleter {
  void operator()(T* p) const {
    if (p == nullptr) return;
    if (const int rc = Destroy(p); rc != 0) report_destroy_failure(typeid(T).name(), rc);
  }
};
}  // namespace detail

using DeviceContext = std::unique_ptr<ibv_context, detail::VerbsDeleter<ibv_context, &ibv_close_device>>;
using ProtectionDomain = std::unique_ptr<ibv_pd, detail::VerbsDeleter<ibv_pd, &ibv_dealloc_pd>>;
using CompletionQueue = std::unique_ptr<ibv_cq, detail::VerbsDeleter<ibv_cq, &ibv_destroy_cq>>;
using QueuePair = std::unique_ptr<ibv_qp, detail::VerbsDeleter<ibv_qp, &ibv_destroy_qp>>;
using MemoryRegion = std::unique_ptr<ibv_mr, detail::VerbsDeleter<ibv_mr, &ibv_dereg_mr>>;

/// ibv_get_device_list, owned. get() fails with "no RDMA devices: ..." both when the kernel has no
/// RDMA support (NULL with errno ENOSYS) and when it has no adapter (an empty list).
class DeviceList {
 public:
  static Result<DeviceList> get();
  DeviceList(DeviceList&& other) noexcept : list_(other.list_), count_(other.count_) { other.list_ = nullptr; }
  DeviceList& operator=(DeviceList&&) = delete;
  DeviceList(const DeviceList&) = delete;
  DeviceList& operator=(const DeviceList&) = delete;
  ~DeviceList();

  std::span<ibv_device* const> devices() const { return {list_, static_cast<std::size_t>(count_)}; }
  /// The device called `name`, or the first one when `name` is empty; kInvalidArgument listing the
  /// devices present when there is no such device.
  Result<ibv_device*> find(const std::string& name) const;

 private:
  DeviceList(ibv_device** list, int count) : list_(list), count_(count) {}
  ibv_device** list_;
  int count_;
};

/// ibv_open_device; kUnavailable with the errno text on failure.
Result<DeviceContext> open_device(ibv_device* device);

}  // namespace tern::ibbench
