// Helpers for the daemon tests: an in-process ternd on a private socket, and trainer processes
// (test_trainer.cc) started with posix_spawn and awaited with a deadline (pidfd + poll).
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tern/daemon/daemon.h"

extern char** environ;

namespace tern::daemon::test {

/// A private directory (mode 0755 so that a setuid'ed trainer can reach a socket in it).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tern-daemon-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline DaemonConfig test_config(const std::string& socket_path) {
  DaemonConfig c;
  c.socket_path = socket_path;
  c.advertise_host = "127.0.0.1";
  c.join_timeout = std::chrono::milliseconds(20'000);
  c.op_timeout = std::chrono::milliseconds(20'000);
  c.heartbeat_interval = std::chrono::milliseconds(200);
  c.heartbeat_timeout = std::chrono::milliseconds(2'000);
  return c;
}

/// A Daemon serving on its own thread.
class TestDaemon {
 public:
  explicit TestDaemon(const DaemonConfig& config) {
    auto d = Daemon::create(config);
    if (!d) {
      ADD_FAILURE() << d.status().to_string();
      return;
    }
    daemon_ = std::move(*d);
    thread_ = std::thread([this] { run_status_ = daemon_->run(); });
  }
  ~TestDaemon() { stop(); }
  void stop(const std::string& reason = "test finished") {
    if (!daemon_) return;
    daemon_->stop(reason);
    if (thread_.joinable()) thread_.join();
    daemon_.reset();
  }
  Daemon& operator*() { return *daemon_; }
  Daemon* operator->() { return daemon_.get(); }
  bool ok() const { return daemon_ != nullptr; }
  const Status& run_status() const { return run_status_; }

 private:
  std::unique_ptr<Daemon> daemon_;
  std::thread thread_;
  Status run_status_;
};

/// One trainer process.
class Trainer {
 public:
  Trainer(std::vector<std::string> args, std::string out) : out_(std::move(out)) {
    args.insert(args.begin(), TERN_TEST_TRAINER);
    args.push_back("--out");
    args.push_back(out_);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, TERN_TEST_TRAINER, nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
    pidfd_ = pid_ > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)) : -1;
  }
  ~Trainer() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  /// Waits for the exit (deadline); returns the exit code, or -1 on timeout (the process is killed).
  int wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    pollfd p{pidfd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
      ::kill(pid_, SIGKILL);
    }
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  /// The output file: "ok\n"+bytes or "error ...".
  std::string output() const {
    std::ifstream f(out_, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  pid_t pid() const { return pid_; }

 private:
  std::string out_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
};

}  // namespace tern::daemon::test
