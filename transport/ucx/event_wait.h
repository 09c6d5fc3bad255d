// Sleeping until UCX has work or another thread calls wake(): poll() on the worker's event fd
// (armed by the caller) and on an eventfd that wake() writes.
#pragma once

#include <chrono>
#include <memory>

#include "tern/common/status.h"

namespace tern::transport::ucx {

class EventWait {
 public:
  static Result<std::unique_ptr<EventWait>> create();

  EventWait(const EventWait&) = delete;
  EventWait& operator=(const EventWait&) = delete;
  ~EventWait();

  /// Thread-safe, async-signal-safe: makes the current or next wait() return.
  void wake() noexcept;

  /// Waits up to `timeout` for `ucx_fd` to become readable or for wake(). Returns true when
  /// woken by wake() (the wake-up is consumed), false otherwise.
  Result<bool> wait(int ucx_fd, std::chrono::milliseconds timeout);

 private:
  explicit EventWait(int fd) noexcept : fd_(fd) {}
  int fd_;
};

}  // namespace tern::transport::ucx
