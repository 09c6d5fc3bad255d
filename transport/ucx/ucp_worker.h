// RAII for ucp_worker_h: one per progress thread (UCS_THREAD_MODE_SINGLE), with its address and
// the event fd used to sleep until UCX has something to do.
#pragma once

#include <ucp/api/ucp.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "tern/common/status.h"
#include "ucp_context.h"

namespace tern::transport::ucx {

class UcpWorker {
 public:
  /// ucp_worker_create (single-threaded), then its address (copied; UCX's copy is released) and
  /// its event fd (ucp_worker_get_efd; owned by UCX).
  static Result<std::unique_ptr<UcpWorker>> create(const UcpContext& context);

  UcpWorker(const UcpWorker&) = delete;
  UcpWorker& operator=(const UcpWorker&) = delete;
  ~UcpWorker();

  ucp_worker_h get() const noexcept { return worker_; }
  const std::vector<std::byte>& address() const noexcept { return address_; }
  int event_fd() const noexcept { return event_fd_; }

  /// One ucp_worker_progress call: the number of events it handled.
  unsigned progress() noexcept { return ucp_worker_progress(worker_); }
  /// ucp_worker_arm: true when armed (the event fd will signal new events); false when UCX still
  /// has events to process (UCS_ERR_BUSY): progress, then arm again.
  Result<bool> arm();

 private:
  UcpWorker(ucp_worker_h worker, std::vector<std::byte> address, int event_fd) noexcept
      : worker_(worker), address_(std::move(address)), event_fd_(event_fd) {}
  ucp_worker_h worker_;
  std::vector<std::byte> address_;
  int event_fd_;
};

}  // namespace tern::transport::ucx
