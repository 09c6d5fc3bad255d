// Daemon's shared state (daemon.cc) as seen by sessions and group workers.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tern/daemon/config.h"
#include "tern/daemon/daemon.h"

namespace tern::daemon {

class Session;
class GroupState;

struct Daemon::Impl : std::enable_shared_from_this<Daemon::Impl> {
  explicit Impl(const DaemonConfig& c);

  DaemonConfig config;
  std::string host_name;       ///< this node's name in messages ("rank 3 on host n1 left")
  std::string advertise_host;  ///< where peers reach this node's rendezvous
  boost::asio::io_context io;
  boost::asio::local::stream_protocol::acceptor acceptor{io};
  boost::asio::steady_timer tick{io};
  std::atomic<std::int64_t> last_progress_ns{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> ran{false};
  std::atomic<std::uint64_t> submissions_polled{0};  ///< found by poll_rings, not a doorbell
  std::atomic<std::uint64_t> ops_overlapped{0};  ///< all groups: started while the previous one ran

  mutable std::mutex mutex;  // guards everything below
  std::string stop_reason;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::map<std::string, std::shared_ptr<GroupState>> groups;  // by unique id text (never logged)
  std::vector<std::shared_ptr<GroupState>> retired;           // workers still finishing
  std::uint64_t next_client_id = 1;
  std::uint64_t clients_accepted = 0, clients_refused = 0, protocol_errors = 0;
  std::deque<std::string> recent_errors;  // at most kMaxRecentErrors, newest last

  // io thread only: the ring poll after a submission (see keep_polling)
  std::chrono::steady_clock::time_point poll_until{};
  bool poll_posted = false;
  std::vector<std::shared_ptr<Session>> poll_sessions;  // reused snapshot of `sessions`

  static constexpr std::size_t kMaxRecentErrors = 32;
  void record_error(const std::string& message);  // takes `mutex`

  // io thread:
  void accept_next();
  /// Removes every group (live and retired) under the lock; dropping the result joins their workers.
  std::vector<std::shared_ptr<GroupState>> take_all_groups();
  void on_tick();
  /// A session served submissions: keep polling every ring for config.poll_us from now.
  void keep_polling();
  void post_poll();  ///< queues poll_rings() behind the handlers that are ready
  void poll_rings();
  void session_closed(std::uint64_t id);
  void shutdown_on_io_thread();
  /// Looks up or creates the group for a join; checks ownership and consistency.
  Result<std::shared_ptr<GroupState>> group_for_join(const std::string& id_text, std::uint32_t uid, int rank,
                                                     int nranks, int local_size, std::uint64_t seed,
                                                     std::chrono::milliseconds timeout);
  void retire_group_if_empty(const std::shared_ptr<GroupState>& group);
  Result<std::string> make_unique_id() const;
  std::string status_json() const;  // any thread
};

}  // namespace tern::daemon
