// One framed, deadline-guarded TCP connection of the bootstrap (both the root's side and a
// member's). Everything here runs on the owner's single I/O thread: no locking.
//
//  - Reads frames continuously; each frame's length is checked against the current inbound
//    maximum before its payload is allocated, then decoded (bootstrap_wire::decode_frame).
//  - A watchdog closes the connection when its deadline passes: an absolute deadline (a
//    handshake), an idle timeout (heartbeats: no frame for that long), or both.
//  - Writes are queued and written one at a time; a peer that stops reading cannot make the
//    queue grow past a hard maximum.
//  - on_closed runs once, from an I/O completion (never from inside send() or close()), when the
//    connection fails: end of file, an I/O error, a malformed frame or a deadline (kTimeout).
//    A close the owner asked for (close(), close_after_flush()) does not call it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "tern/common/status.h"
#include "util.h"
#include "wire.h"

namespace tern::transport::bootstrap_detail {

using Frame = std::shared_ptr<const bootstrap_wire::Bytes>;

/// Encodes once, for sending to one or many channels.
Frame make_frame(const bootstrap_wire::Message& message);

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  using MessageFn = std::function<void(bootstrap_wire::Message&&)>;
  using ClosedFn = std::function<void(const Status&)>;

  static std::shared_ptr<Channel> create(tcp::socket socket);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// The remote endpoint, for messages.
  const std::string& peer() const noexcept { return peer_; }

  /// Starts reading. Frames longer than `max_inbound` payload bytes fail the connection.
  void start(MessageFn on_message, ClosedFn on_closed, std::size_t max_inbound);
  void set_max_inbound(std::size_t max_inbound) noexcept { max_inbound_ = max_inbound; }
  /// Absolute deadline (Clock::time_point::max() disables it).
  void set_deadline(Clock::time_point deadline);
  /// Idle timeout: fail when no complete frame arrived for this long (zero disables it).
  void set_idle_timeout(Clock::duration timeout);
  /// When the last complete frame arrived (or the channel was created).
  Clock::time_point last_heard() const noexcept { return last_heard_; }

  /// Queues a frame. Ignored once closed or closing.
  void send(Frame frame);
  void send(const bootstrap_wire::Message& message) { send(make_frame(message)); }

  /// Closes now; no callback.
  void close();
  /// Stops delivering frames, writes what is queued, shuts down sending and waits for the peer
  /// to close (so that the last frames are not lost to a reset), at most `bound`; then closes and
  /// calls `done` (if any). No on_closed callback.
  void close_after_flush(Clock::duration bound, std::function<void()> done = {});

  bool is_open() const noexcept { return open_; }
  /// Open and not closing: frames are still delivered and sent.
  bool usable() const noexcept { return open_ && !closing_; }

 private:
  explicit Channel(tcp::socket socket);
  void read_header();
  void on_header(const boost::system::error_code& ec);
  void on_body(const boost::system::error_code& ec);
  void write_next();
  void on_written(const boost::system::error_code& ec);
  void rearm_watchdog();
  void on_watchdog(const boost::system::error_code& ec, std::uint64_t generation);
  Clock::time_point effective_deadline() const;
  void fail(const Status& status);
  void finish_close();

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string peer_;
  MessageFn on_message_;
  ClosedFn on_closed_;
  std::function<void()> on_flushed_;
  std::size_t max_inbound_ = bootstrap_wire::kMaxHandshakeFrame;
  std::array<std::uint8_t, bootstrap_wire::kHeaderBytes> header_{};
  bootstrap_wire::Bytes frame_;
  std::deque<Frame> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool open_ = true;
  bool closing_ = false;
  bool send_shut_ = false;
  bool overflowed_ = false;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::duration idle_timeout_{0};
  Clock::time_point last_heard_;
  std::uint64_t watchdog_generation_ = 0;
};

}  // namespace tern::transport::bootstrap_detail
