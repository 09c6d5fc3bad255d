// ternd's side of systemd's service protocol (sd_notify(3)) and its signal handling. Without
// systemd (NOTIFY_SOCKET unset) every notification is a no-op, so ternd runs the same by hand.
//
// Threads: SignalThread and ServiceMonitor each run one thread, started on construction and
// joined by the destructor; both call into the Daemon, which must outlive them (declare them
// after the Daemon). notify() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tern/common/status.h"

namespace tern::daemon {

class Daemon;

/// Sends one sd_notify message ("READY=1\nSTATUS=Serving ..."); failures are logged at debug.
void notify(const std::string& state);

/// Blocks SIGTERM and SIGINT in the calling thread and every thread it creates afterwards: call
/// first thing in main, so that only SignalThread ever receives them.
void block_termination_signals();

/// Waits for SIGTERM/SIGINT (a signalfd) and answers the first with STOPPING=1 and
/// Daemon::stop("received SIGTERM"); later ones are logged. The destructor wakes the thread (an
/// eventfd) and joins it.
class SignalThread {
 public:
  /// Fails (kInternal) only if the kernel refuses a signalfd or eventfd (out of descriptors).
  static Result<std::unique_ptr<SignalThread>> start(Daemon& daemon);
  ~SignalThread();
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

  /// The first signal received, 0 if none.
  int received() const;

 private:
  SignalThread(Daemon& daemon, int signal_fd, int wake_fd);
  void loop();

  Daemon& daemon_;
  const int signal_fd_;
  const int wake_fd_;
  std::atomic<int> received_{0};
  std::thread thread_;
};

/// Keeps systemd informed while ternd serves (only when NOTIFY_SOCKET is set; no thread otherwise):
///  - when the watchdog is enabled for this process (WatchdogSec=, sd_watchdog_enabled), sends
///    WATCHDOG=1 at half its interval (at least every second) while Daemon::healthy(), and stops
///    while it is not, so systemd restarts a stalled ternd;
///  - refreshes STATUS= ("Serving on /run/tern/ternd.sock: 2 clients, 1 group") once a second when
///    it changed, for `systemctl status ternd`.
class ServiceMonitor {
 public:
  explicit ServiceMonitor(const Daemon& daemon);
  ~ServiceMonitor();
  ServiceMonitor(const ServiceMonitor&) = delete;
  ServiceMonitor& operator=(const ServiceMonitor&) = delete;

 private:
  void loop();

  const Daemon& daemon_;
  bool watchdog_ = false;
  std::chrono::microseconds period_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace tern::daemon
