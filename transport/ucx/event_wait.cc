#include "event_wait.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace tern::transport::ucx {

namespace {
Status errno_error(const char* what, int error) {
  return internal_error(std::string(what) + ": " + std::strerror(error));
}
}  // namespace

Result<std::unique_ptr<EventWait>> EventWait::create() {
  const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return errno_error("eventfd", errno);
  return std::unique_ptr<EventWait>(new EventWait(fd));
}

EventWait::~EventWait() { ::close(fd_); }

void EventWait::wake() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: a wake-up is pending anyway.
  [[maybe_unused]] const ssize_t written = ::write(fd_, &one, sizeof one);
}

Result<bool> EventWait::wait(int ucx_fd, std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {ucx_fd, POLLIN, 0}};
  const int ms = timeout.count() < 0 ? 0 : static_cast<int>(std::min<std::int64_t>(timeout.count(), 1 << 30));
  const int ready = ::poll(fds, 2, ms);
  if (ready < 0) {
    if (errno == EINTR) return false;
    return errno_error("poll on the UCX worker's event fd", errno);
  }
  if ((fds[0].revents & POLLIN) == 0) return false;
  std::uint64_t count = 0;
  [[maybe_unused]] const ssize_t got = ::read(fd_, &count, sizeof count);
  return true;
}

}  // namespace tern::transport::ucx
