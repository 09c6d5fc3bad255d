// The TCP control connection between an ib-bench server and client (perftest's out-of-band
// exchange): options, UCX worker addresses or verbs QP attributes, per-size barriers and results.
//
// Messages are JSON objects framed as a 4-byte big-endian length plus the UTF-8 text, at most
// kMaxControlMessage bytes. Every call takes a deadline; nothing blocks past it. Not thread-safe:
// one thread uses a channel at a time. The connection is unauthenticated: run ib-bench on a trusted
// management network (it moves only benchmark data and never executes what it receives).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tern/common/status.h"

namespace tern::ibbench {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline constexpr std::size_t kMaxControlMessage = std::size_t{1} << 20;

/// Deadline `seconds` from now.
Deadline deadline_in(double seconds);

/// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  bool valid() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

class ControlChannel {
 public:
  /// Connects to host:port (name or address, IPv4 or IPv6), retrying refused connections every
  /// 100 ms until the deadline (the server may start a moment after the client).
  /// kTimeout naming the address when it never answers; kInvalidArgument for an unknown host.
  static Result<ControlChannel> connect(const std::string& host, std::uint16_t port, Deadline deadline);

  Status send(const nlohmann::json& message, Deadline deadline);
  /// kPeerFailure when the peer closed the connection, kCorruptData for a bad frame, kTimeout.
  Result<nlohmann::json> receive(Deadline deadline);

  /// "10.77.0.2:18515": the other end, for messages.
  const std::string& peer() const noexcept { return peer_; }
  /// The local address of the connection (the interface that reaches the peer), without port.
  std::string local_address() const;

 private:
  friend class ControlListener;
  ControlChannel(Fd fd, std::string peer) : fd_(std::move(fd)), peer_(std::move(peer)) {}
  Status write_all(const void* data, std::size_t length, Deadline deadline);
  Status read_all(void* data, std::size_t length, Deadline deadline);
  Fd fd_;
  std::string peer_;
};

class ControlListener {
 public:
  /// Listens on bind_address:port ("" or "0.0.0.0": every IPv4 address; "::": IPv6). port 0
  /// picks a free port (see port()). kUnavailable when the port is taken.
  static Result<ControlListener> listen(const std::string& bind_address, std::uint16_t port);
  std::uint16_t port() const noexcept { return port_; }
  /// Waits for one client until the deadline (kTimeout).
  Result<ControlChannel> accept(Deadline deadline);

 private:
  ControlListener(Fd fd, std::uint16_t port) : fd_(std::move(fd)), port_(port) {}
  Fd fd_;
  std::uint16_t port_;
};

/// Throws nothing: the "error" member of a peer's message as a Status (kPeerFailure), or OK.
Status peer_error(const nlohmann::json& message, const std::string& peer);

}  // namespace tern::ibbench
