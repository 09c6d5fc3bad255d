#include "service.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "tern/daemon/daemon.h"

namespace tern::daemon {
namespace {

sigset_t termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void notify(const std::string& state) {
  const int r = sd_notify(0, state.c_str());
  if (r < 0) spdlog::debug("sd_notify({}) failed: {}", state, std::strerror(-r));
}

void block_termination_signals() {
  const sigset_t set = termination_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Result<std::unique_ptr<SignalThread>> SignalThread::start(Daemon& daemon) {
  const sigset_t set = termination_signals();
  const int signal_fd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (signal_fd < 0) return internal_error(std::string("signalfd: ") + std::strerror(errno));
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd < 0) {
    const int err = errno;
    ::close(signal_fd);
    return internal_error(std::string("eventfd: ") + std::strerror(err));
  }
  return std::unique_ptr<SignalThread>(new SignalThread(daemon, signal_fd, wake_fd));
}

SignalThread::SignalThread(Daemon& daemon, int signal_fd, int wake_fd)
    : daemon_(daemon), signal_fd_(signal_fd), wake_fd_(wake_fd), thread_([this] { loop(); }) {}

SignalThread::~SignalThread() {
  const std::uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof one) != sizeof one)
    spdlog::warn("cannot wake the signal thread: {}", std::strerror(errno));
  thread_.join();
  ::close(signal_fd_);
  ::close(wake_fd_);
}

int SignalThread::received() const { return received_.load(); }

void SignalThread::loop() {
  for (;;) {
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("signal thread: poll: {}; SIGTERM will not be handled", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    signalfd_siginfo info{};
    if (::read(signal_fd_, &info, sizeof info) != sizeof info) continue;
    const int sig = static_cast<int>(info.ssi_signo);
    const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    int expected = 0;
    if (!received_.compare_exchange_strong(expected, sig)) {
      spdlog::info("received {} again (from pid {}); already shutting down", name, info.ssi_pid);
      continue;
    }
    spdlog::info("received {} (from pid {}): shutting down; in-flight operations fail", name, info.ssi_pid);
    notify(std::string("STOPPING=1\nSTATUS=Shutting down (") + name + ")");
    daemon_.stop(std::string("received ") + name);
  }
}

namespace {

// What `systemctl status ternd` shows under "Status:".
std::string status_line(const Daemon& daemon) {
  const auto j = nlohmann::json::parse(daemon.status_json(), nullptr, /*allow_exceptions=*/false);
  std::string line = "Serving on " + daemon.socket_path();
  if (j.is_object() && j.contains("clients") && j.contains("groups")) {
    const std::size_t clients = j["clients"].size(), groups = j["groups"].size();
    line += ": " + std::to_string(clients) + (clients == 1 ? " client, " : " clients, ") + std::to_string(groups) +
            (groups == 1 ? " group" : " groups");
  }
  return line;
}

}  // namespace

ServiceMonitor::ServiceMonitor(const Daemon& daemon) : daemon_(daemon) {
  const char* notify_socket = std::getenv("NOTIFY_SOCKET");
  if (notify_socket == nullptr || *notify_socket == '\0') return;
  std::uint64_t usec = 0;
  watchdog_ = sd_watchdog_enabled(0, &usec) > 0 && usec > 0;
  period_ = std::chrono::seconds(1);
  if (watchdog_) {
    period_ = std::min<std::chrono::microseconds>(period_, std::chrono::microseconds(usec / 2));
    spdlog::info("systemd watchdog: {} ms; pinging every {} ms while healthy", usec / 1000, period_.count() / 1000);
  }
  thread_ = std::thread([this] { loop(); });
}

ServiceMonitor::~ServiceMonitor() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServiceMonitor::loop() {
  bool was_healthy = true;
  std::string last_status;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return done_; })) {
    if (watchdog_) {
      const bool healthy = daemon_.healthy();
      if (healthy) notify("WATCHDOG=1");
      if (healthy != was_healthy) {
        if (healthy) {
          spdlog::info("serving loop is making progress again; watchdog pings resumed");
        } else {
          spdlog::error("serving loop made no progress for 5 s; watchdog pings withheld (systemd restarts ternd)");
        }
        was_healthy = healthy;
      }
    }
    std::string status = status_line(daemon_);
    if (status != last_status) {
      notify("STATUS=" + status);
      last_status = std::move(status);
    }
  }
}

}  // namespace tern::daemon
