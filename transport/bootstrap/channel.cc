#include "channel.h"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cstring>
#include <utility>

namespace tern::transport::bootstrap_detail {
namespace {

// A peer that stops reading can hold at most this much of our memory (two of the largest frames).
constexpr std::size_t kMaxQueuedBytes = 2 * (bootstrap_wire::kMaxFrameBytes + bootstrap_wire::kHeaderBytes);

Status io_status(const boost::system::error_code& ec) {
  if (ec == asio::error::eof) return unavailable("connection closed by the peer");
  return unavailable(ec.message());
}

}  // namespace

Frame make_frame(const bootstrap_wire::Message& message) {
  return std::make_shared<const bootstrap_wire::Bytes>(bootstrap_wire::encode(message));
}

std::shared_ptr<Channel> Channel::create(tcp::socket socket) {
  return std::shared_ptr<Channel>(new Channel(std::move(socket)));
}

Channel::Channel(tcp::socket socket)
    : socket_(std::move(socket)), timer_(socket_.get_executor()), last_heard_(Clock::now()) {
  boost::system::error_code ec;
  const auto remote = socket_.remote_endpoint(ec);
  peer_ = ec ? std::string("unknown peer") : endpoint_string(remote);
  socket_.set_option(tcp::no_delay(true), ec);  // heartbeats and small control frames: no Nagle delay
}

Channel::~Channel() {
  boost::system::error_code ec;
  socket_.close(ec);
}

void Channel::start(MessageFn on_message, ClosedFn on_closed, std::size_t max_inbound) {
  on_message_ = std::move(on_message);
  on_closed_ = std::move(on_closed);
  max_inbound_ = max_inbound;
  last_heard_ = Clock::now();
  rearm_watchdog();
  read_header();
}

void Channel::set_deadline(Clock::time_point deadline) {
  deadline_ = deadline;
  rearm_watchdog();
}

void Channel::set_idle_timeout(Clock::duration timeout) {
  idle_timeout_ = timeout;
  rearm_watchdog();
}

Clock::time_point Channel::effective_deadline() const {
  Clock::time_point d = deadline_;
  if (idle_timeout_ > Clock::duration::zero() && last_heard_ + idle_timeout_ < d) d = last_heard_ + idle_timeout_;
  return d;
}

void Channel::rearm_watchdog() {
  if (!open_) return;
  const std::uint64_t generation = ++watchdog_generation_;
  const Clock::time_point when = effective_deadline();
  if (when == Clock::time_point::max()) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(when);  // cancels a pending wait; its handler sees operation_aborted
  timer_.async_wait([self = shared_from_this(), generation](const boost::system::error_code& ec) {
    self->on_watchdog(ec, generation);
  });
}

void Channel::on_watchdog(const boost::system::error_code& ec, std::uint64_t generation) {
  if (!open_ || ec == asio::error::operation_aborted || generation != watchdog_generation_) return;
  const Clock::time_point now = Clock::now();
  if (now < effective_deadline()) {  // frames arrived meanwhile: the idle deadline moved on
    rearm_watchdog();
    return;
  }
  if (closing_) {
    finish_close();
    return;
  }
  const bool idle = idle_timeout_ > Clock::duration::zero() && last_heard_ + idle_timeout_ <= now;
  fail(Status(StatusCode::kTimeout,
              idle ? "nothing received for " + format_seconds(now - last_heard_) : std::string("deadline passed")));
}

void Channel::read_header() {
  asio::async_read(socket_, asio::buffer(header_),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) { self->on_header(ec); });
}

void Channel::on_header(const boost::system::error_code& ec) {
  if (!open_) return;
  if (ec) {
    if (closing_) return finish_close();
    return fail(io_status(ec));
  }
  const auto header = bootstrap_wire::decode_header(header_, max_inbound_);
  if (!header.is_ok()) {
    if (closing_) return finish_close();
    return fail(header.status());
  }
  if (frame_.capacity() > (std::size_t{1} << 20) && header->length < (std::size_t{1} << 20))
    bootstrap_wire::Bytes().swap(frame_);  // don't keep a huge buffer after one huge frame
  frame_.resize(bootstrap_wire::kHeaderBytes + header->length);
  std::memcpy(frame_.data(), header_.data(), header_.size());
  if (header->length == 0) return on_body({});
  asio::async_read(socket_, asio::buffer(frame_.data() + bootstrap_wire::kHeaderBytes, header->length),
                   [self = shared_from_this()](const boost::system::error_code& e, std::size_t) { self->on_body(e); });
}

void Channel::on_body(const boost::system::error_code& ec) {
  if (!open_) return;
  if (ec) {
    if (closing_) return finish_close();
    return fail(io_status(ec));
  }
  auto message = bootstrap_wire::decode_frame(frame_, max_inbound_);
  if (!message.is_ok()) {
    if (closing_) return finish_close();
    return fail(message.status());
  }
  last_heard_ = Clock::now();
  if (!closing_ && on_message_) on_message_(std::move(message).value());  // may close this channel
  if (open_) read_header();
}

void Channel::send(Frame frame) {
  if (!open_ || closing_ || overflowed_ || !frame) return;
  if (queued_bytes_ + frame->size() > kMaxQueuedBytes) {
    // Reported from a completion, never from inside send(): the owner may be iterating.
    overflowed_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this(), bytes = queued_bytes_] {
      self->fail(unavailable("the peer is not reading: " + std::to_string(bytes) + " bytes queued"));
    });
    return;
  }
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void Channel::write_next() {
  writing_ = true;
  Frame front = queue_.front();  // the handler keeps the bytes alive even if the queue is cleared
  const auto buffer = asio::buffer(*front);
  asio::async_write(socket_, buffer, [self = shared_from_this(), front = std::move(front)](
                                         const boost::system::error_code& ec, std::size_t) { self->on_written(ec); });
}

void Channel::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  if (!open_) return;
  if (ec) {
    if (closing_) return finish_close();
    return fail(io_status(ec));
  }
  queued_bytes_ -= queue_.front()->size();
  queue_.pop_front();
  if (!queue_.empty()) return write_next();
  if (closing_ && !send_shut_) {
    // Everything is written: tell the peer, then wait for its end of file (see close_after_flush).
    send_shut_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }
}

void Channel::close_after_flush(Clock::duration bound, std::function<void()> done) {
  if (!open_) {
    if (done) asio::post(socket_.get_executor(), std::move(done));
    return;
  }
  if (closing_) {  // already closing: call both callbacks when it is done
    if (done)
      on_flushed_ = [first = std::move(on_flushed_), then = std::move(done)] {
        if (first) first();
        then();
      };
    return;
  }
  on_flushed_ = std::move(done);
  closing_ = true;
  idle_timeout_ = Clock::duration::zero();
  deadline_ = Clock::now() + bound;
  rearm_watchdog();
  if (!writing_ && queue_.empty()) {
    send_shut_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }
}

void Channel::finish_close() {
  close();
  if (on_flushed_) {
    auto done = std::move(on_flushed_);
    on_flushed_ = nullptr;
    done();
  }
}

void Channel::close() {
  if (!open_) return;
  open_ = false;
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  queue_.clear();
  queued_bytes_ = 0;
}

void Channel::fail(const Status& status) {
  if (!open_) return;
  close();
  if (on_closed_) on_closed_(status);
  if (on_flushed_) {
    auto done = std::move(on_flushed_);
    on_flushed_ = nullptr;
    done();
  }
}

}  // namespace tern::transport::bootstrap_detail
