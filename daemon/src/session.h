// One connected client: its control frames, shared memory, doorbells and group memberships.
// Lives on the io thread; complete() and send_reply() may be called from group workers.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon_impl.h"
#include "cuda_memory.h"
#include "shared_memory.h"
#include "tern/daemon/protocol.h"
#include "tern/daemon/ring.h"
#include "unique_fd.h"

namespace tern::daemon {

struct PeerCredentials {
  std::uint32_t pid = 0, uid = 0, gid = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Daemon::Impl& daemon, boost::asio::local::stream_protocol::socket socket, std::uint64_t id,
          PeerCredentials creds);
  ~Session();

  void start();  ///< io thread
  /// io thread: closes the connection, leaves every group (failing their pending operations with
  /// "rank r on host h left: <why>"), drops the shared memory. Idempotent.
  void close(const std::string& why, bool protocol_error);
  /// Completes, with `reason`, every submission the client published that ternd has not read yet
  /// (its doorbell may still be unhandled when the daemon stops). io thread only.
  void fail_unread_submissions(const Status& reason);
  /// io thread: hands every submission published so far to its group (a corrupt ring closes the
  /// session). Returns how many there were.
  std::size_t poll_submissions();

  /// Any thread: writes a completion into this client's ring and rings its doorbell. A client
  /// whose ring is full or corrupt is disconnected.
  void complete(std::uint64_t user_data, const Status& status);
  /// Any thread: queues a reply frame.
  void send_reply(std::vector<std::uint8_t> frame);

  std::uint64_t id() const noexcept { return id_; }
  const PeerCredentials& credentials() const noexcept { return creds_; }
  std::string describe() const;  ///< "client 7 (pid 123, uid 1000)"
  std::uint64_t arena_bytes() const noexcept { return arena_bytes_.load(); }
  std::uint32_t arena_count() const noexcept { return arena_count_.load(); }
  std::uint32_t group_count() const noexcept { return group_count_.load(); }

 private:
  struct Membership {
    std::shared_ptr<GroupState> group;
    int rank = 0;
  };

  void wait_readable();
  void on_readable();
  Status read_available(bool* eof);
  Status handle_frames();
  Status handle(const protocol::Request& request, std::vector<UniqueFd> fds);
  Status on_hello(const protocol::Hello& hello, std::vector<UniqueFd> fds);
  Status on_alloc(const protocol::AllocArena& alloc, UniqueFd fd);
  Status on_join(const protocol::GroupJoin& join);
  void leave_group(std::uint32_t handle, const std::string& why);
  void wait_doorbell();
  void on_doorbell();
  /// Checks one submission; on success hands it to its group.
  Status dispatch(const ring::Submission& s);
  void reply(protocol::MessageType type, const Status& status, const protocol::Reply& body = {});
  void write_next();

  Daemon::Impl& daemon_;
  boost::asio::local::stream_protocol::socket socket_;
  const std::uint64_t id_;
  const PeerCredentials creds_;
  bool closed_ = false;
  bool hello_done_ = false;

  std::vector<std::uint8_t> inbuf_;
  std::deque<UniqueFd> fds_;
  std::deque<std::vector<std::uint8_t>> write_queue_;
  bool writing_ = false;

  // data path
  std::shared_ptr<SharedMapping> ring_memory_;
  std::mutex cq_mutex_;  // the completion producer: group workers and the io thread
  ring::RingView ring_;  // sq side: io thread; cq side: under cq_mutex_
  bool ring_ok_ = false;  // under cq_mutex_
  UniqueFd completion_efd_;  // under cq_mutex_
  std::unique_ptr<boost::asio::posix::stream_descriptor> doorbell_;

  std::map<std::uint32_t, std::shared_ptr<SharedMapping>> arenas_;
  std::uint32_t next_arena_id_ = 1;
  std::atomic<std::uint64_t> arena_bytes_{0};
  std::atomic<std::uint32_t> arena_count_{0};
  std::map<std::uint32_t, std::shared_ptr<CudaMapping>> cuda_;  // GPU registrations
  std::uint32_t next_cuda_id_ = 1;
  std::map<std::uint32_t, Membership> groups_;
  std::uint32_t next_group_handle_ = 1;
  std::atomic<std::uint32_t> group_count_{0};
};

}  // namespace tern::daemon
