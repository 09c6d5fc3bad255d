#include "service.h"

#include <pthread.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstring>
#include <ctime>

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

SignalThread::SignalThread(Daemon& daemon) : daemon_(daemon), thread_([this] { loop(); }) {}

SignalThread::~SignalThread() {
  done_ = true;
  thread_.join();
}

int SignalThread::received() const { return received_.load(); }

void SignalThread::loop() {
  const sigset_t set = termination_signals();
  const timespec poll{0, 200'000'000};
  while (!done_) {
    siginfo_t info{};
    const int sig = sigtimedwait(&set, &info, &poll);
    if (sig < 0) continue;  // EAGAIN (poll period) or EINTR
    const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    int expected = 0;
    if (!received_.compare_exchange_strong(expected, sig)) {
      spdlog::info("received {} again (from pid {}); already shutting down", name, info.si_pid);
      continue;
    }
    spdlog::info("received {} (from pid {}): shutting down; in-flight operations fail", name, info.si_pid);
    notify(std::string("STOPPING=1\nSTATUS=Shutting down (") + name + ")");
    daemon_.stop(std::string("received ") + name);
  }
}

WatchdogThread::WatchdogThread(const Daemon& daemon) : daemon_(daemon) {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  period_ = std::chrono::microseconds(usec / 2);
  spdlog::info("systemd watchdog: {} ms, pinging every {} ms while healthy", usec / 1000, usec / 2000);
  thread_ = std::thread([this] { loop(); });
}

WatchdogThread::~WatchdogThread() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WatchdogThread::loop() {
  bool was_healthy = true;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return done_; })) {
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
}

}  // namespace tern::daemon
