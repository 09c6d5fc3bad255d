#include "verbs/verbs_raii.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tern::ibbench {

bool is_no_rdma(const Status& status) {
  return !status.is_ok() && status.code() == StatusCode::kUnavailable &&
         std::string_view(status.message()).substr(0, kNoRdmaDevices.size()) == kNoRdmaDevices;
}

namespace detail {
void report_destroy_failure(const char* what, int rc) {
  std::fprintf(stderr, "ib-bench: warning: destroying a verbs %s failed: %s\n", what,
               std::strerror(rc > 0 ? rc : errno));
}
}  // namespace detail

Status device_list_outcome(bool list_is_null, int err, int count) {
  if (list_is_null) {
    if (err == ENOSYS)
      return unavailable(fmt::format("{}: this kernel has no RDMA support (ibv_get_device_list: {})", kNoRdmaDevices,
                                     std::strerror(err)));
    return unavailable(fmt::format("{}: ibv_get_device_list failed: {}", kNoRdmaDevices,
                                   err != 0 ? std::strerror(err) : "unknown error"));
  }
  if (count <= 0)
    return unavailable(
        fmt::format("{}: no adapter found (load its driver, e.g. modprobe mlx5_ib, and ib_uverbs; "
                    "`ib-bench check` lists what is missing)",
                    kNoRdmaDevices));
  return Status::ok();
}

Result<DeviceList> DeviceList::get() {
  int count = 0;
  errno = 0;
  ibv_device** list = ibv_get_device_list(&count);
  const int err = errno;
  Status outcome = device_list_outcome(list == nullptr, err, count);
  if (!outcome) {
    if (list != nullptr) ibv_free_device_list(list);
    return outcome;
  }
  return DeviceList(list, count);
}

DeviceList::~DeviceList() {
  if (list_ != nullptr) ibv_free_device_list(list_);
}

Result<ibv_device*> DeviceList::find(const std::string& name) const {
  std::string names;
  for (ibv_device* d : devices()) {
    if (name.empty() || name == ibv_get_device_name(d)) return d;
    names += (names.empty() ? "" : ", ") + std::string(ibv_get_device_name(d));
  }
  return invalid_argument(fmt::format("no RDMA device named '{}' (devices: {})", name, names));
}

Result<DeviceContext> open_device(ibv_device* device) {
  ibv_context* ctx = ibv_open_device(device);
  if (ctx == nullptr)
    return unavailable(
        fmt::format("cannot open RDMA device {}: {}", ibv_get_device_name(device), std::strerror(errno)));
  return DeviceContext(ctx);
}

}  // namespace tern::ibbench
