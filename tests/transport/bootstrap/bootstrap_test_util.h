// Helpers shared by the bootstrap tests: fast options, concurrent joins, a failure-callback
// recorder, raw TCP clients (for hostile-client tests) and child processes (kill -9, SIGSTOP).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tern/transport/bootstrap.h"

namespace tern::transport::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// Small heartbeat settings so that the suite runs in seconds: 50 ms / 1 s. The timeout leaves
/// room for sanitizers and loaded machines, where a 300 ms silence can happen without a failure.
BootstrapOptions fast_options();
/// For the tests of silence detection: 50 ms / 300 ms.
BootstrapOptions detection_options();
/// Failure detection is checked against heartbeat_timeout plus this.
inline constexpr auto kSlack = 3s;

/// A fresh id on loopback with an ephemeral port (complete once a server has bound it).
UniqueId local_id();

/// Records on_peer_failure calls; thread-safe. Must outlive the members it is given to.
class FailureLog {
 public:
  PeerFailureFn callback();
  /// Waits until a failure of `rank` was reported; its Status, or nullopt after `timeout`.
  std::optional<Status> wait_for(int rank, std::chrono::milliseconds timeout);
  std::vector<std::pair<int, Status>> events() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<int, Status>> events_;
};

/// Joins one member per entry of `joins`, each on its own thread, all at once.
std::vector<Result<std::unique_ptr<Bootstrap>>> join_concurrently(const UniqueId& id, std::vector<JoinOptions> joins,
                                                                  const BootstrapOptions& options);

/// A formed group of `n` members (any rank) around a standalone server, each with `log` (if any)
/// and payload "payload-<i>" (i = join index). Fails the test on error.
struct Group {
  std::unique_ptr<BootstrapServer> server;
  std::vector<std::unique_ptr<Bootstrap>> members;  // sorted by rank
};
Group form_group(int n, const BootstrapOptions& options, FailureLog* log = nullptr);

/// Threads of this process (from /proc/self/status).
int thread_count();

/// A blocking TCP client for hostile-client tests (POSIX sockets, loopback).
class RawClient {
 public:
  static std::unique_ptr<RawClient> connect(std::uint16_t port);
  ~RawClient();
  bool send_all(const std::vector<std::uint8_t>& bytes);
  /// Reads one whole frame (header + payload), or nullopt on EOF / error / `timeout`.
  std::optional<std::vector<std::uint8_t>> read_frame(std::chrono::milliseconds timeout);
  /// True if the peer closed the connection (EOF or reset) within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout);

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  bool read_exact(std::uint8_t* out, std::size_t n, Clock::time_point deadline);
  int fd_;
};

/// A child process running the bootstrap_test_member helper, with pipes to its stdin/stdout.
class Child {
 public:
  static std::unique_ptr<Child> spawn(const std::vector<std::string>& args);
  ~Child();  ///< SIGKILL if still running, then reaps it
  /// The next line of its stdout (without the newline), or nullopt on EOF / timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  void signal(int sig);
  /// Closes its stdin (the helper then leaves cleanly) and waits for its exit status.
  int finish();
  int pid() const { return pid_; }

 private:
  Child(int pid, int in, int out) : pid_(pid), in_(in), out_(out) {}
  int pid_;
  int in_;
  int out_;
  bool reaped_ = false;
  std::string buffer_;
};

/// Path of the helper binary (set by CMake).
const char* helper_path();

}  // namespace tern::transport::testing
