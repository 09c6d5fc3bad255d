// A member: connects (retrying until the formation deadline), authenticates the root and itself,
// waits for the table, then heartbeats, relays failures to the application and runs collectives.
// Protocol state lives on the I/O thread; what application threads touch is under `mu`.
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "channel.h"
#include "crypto.h"
#include "tern/transport/bootstrap.h"
#include "util.h"
#include "wire.h"

namespace tern::transport {

namespace wire = bootstrap_wire;
using namespace bootstrap_detail;  // NOLINT(google-build-using-namespace): this file implements it

namespace {
constexpr auto kMaxRetryDelay = std::chrono::milliseconds(1000);
constexpr auto kLeaveBound = std::chrono::milliseconds(1000);
// The Impl whose I/O thread this is (null on application threads).
thread_local const void* t_io_thread_owner = nullptr;
}  // namespace

struct Bootstrap::Impl {
  enum class Phase { kConnecting, kHandshake, kWaiting, kWelcomed, kFormed, kDone };

  using GatherResult = Result<std::vector<std::vector<std::uint8_t>>>;
  struct Pending {
    wire::CollectiveKind kind = wire::CollectiveKind::kAllgather;
    std::promise<GatherResult> done;
  };

  Impl(const UniqueId& unique_id, JoinOptions jo, const BootstrapOptions& o, std::unique_ptr<BootstrapServer> srv)
      : id(unique_id), join_options(std::move(jo)), options(o), server(std::move(srv)),
        heartbeat_interval(o.heartbeat_interval), heartbeat_timeout(o.heartbeat_timeout) {}

  ~Impl() { stop(); }

  // --- lifecycle (application threads) -------------------------------------------------------

  void begin() {
    join_started = Clock::now();
    formation_deadline = join_started + options.formation_timeout;
    retry_delay = options.connect_retry_interval;
    heartbeat_frame = make_frame(wire::Heartbeat{});
    formed_future = formed.get_future();
    formation_timer.expires_at(formation_deadline);
    formation_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) on_formation_deadline();
    });
    asio::post(io, [this] { start_attempt(); });
    thread = std::thread([this] { run(); });
    // Runs on the thread that requests the stop (at once if it already was): hand it to the I/O thread.
    cancel_callback.emplace(join_options.cancel, [this] { asio::post(io, [this] { on_cancelled(); }); });
  }

  void run() {
    t_io_thread_owner = this;
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("tern bootstrap member: unexpected exception on the I/O thread: {}", e.what());
      }
    }
  }

  Status wait_formed() {
    // The I/O thread always settles formation by the deadline; the margin only guards a bug.
    const bool settled =
        formed_future.wait_until(formation_deadline + std::chrono::seconds(10)) == std::future_status::ready;
    cancel_callback.reset();  // formed or failed: a later stop request has nothing to cancel
    if (!settled) return internal_error("bootstrap: the I/O thread did not settle formation by its deadline");
    return formed_future.get();
  }

  bool on_io_thread() const { return t_io_thread_owner == this; }

  Status close() {
    if (on_io_thread())
      return invalid_argument("Bootstrap::close() called from the bootstrap's own I/O thread (inside on_peer_failure)");
    std::map<std::uint64_t, std::shared_ptr<Pending>> orphans;
    {
      std::lock_guard lock(mu);
      if (closed) return Status::ok();
      closed = true;
      orphans.swap(pending);
    }
    for (auto& [seq, p] : orphans)
      p->done.set_value(unavailable(std::string(wire::collective_name(p->kind)) + " #" + std::to_string(seq) +
                                    " failed: this member closed the bootstrap"));
    if (thread.joinable()) {
      std::promise<void> left;
      asio::post(io, [this, &left] { leave(left); });
      left.get_future().wait_for(2 * kLeaveBound);
    }
    stop();
    server.reset();  // a server this member owns shuts down after the member has left
    return Status::ok();
  }

  void stop() {
    cancel_callback.reset();  // before the I/O thread and io go away: no more posts to them
    if (!thread.joinable()) return;
    work.reset();
    io.stop();
    thread.join();
  }

  // I/O thread: send the goodbye, wait until it is written (bounded).
  void leave(std::promise<void>& left) {
    phase = Phase::kDone;
    heartbeat_timer.cancel();
    formation_timer.cancel();
    retry_timer.cancel();
    if (ch && ch->usable() && !root_lost) {
      ch->send(wire::Leave{});
      ch->close_after_flush(kLeaveBound, [&left] { left.set_value(); });
      return;
    }
    if (ch) ch->close();
    left.set_value();
  }

  // --- connecting ----------------------------------------------------------------------------

  void start_attempt() {
    if (phase == Phase::kDone) return;
    if (Clock::now() >= formation_deadline) return on_formation_deadline();
    phase = Phase::kConnecting;
    resolver.async_resolve(id.host(), std::to_string(id.port()), tcp::resolver::numeric_service,
                           [this](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
                             on_resolved(ec, results);
                           });
  }

  void on_resolved(const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
    if (phase != Phase::kConnecting) return;
    if (ec) {
      last_error = "cannot resolve " + id.host() + ": " + ec.message();
      return schedule_retry();
    }
    auto socket = std::make_shared<tcp::socket>(io);
    const auto limit = std::min(Clock::now() + options.connect_timeout, formation_deadline);
    connect_timer.expires_at(limit);
    connect_timer.async_wait([socket](const boost::system::error_code& e) {
      boost::system::error_code ignored;
      if (!e) socket->close(ignored);  // the pending connect completes with operation_aborted
    });
    asio::async_connect(*socket, results,
                        [this, socket](const boost::system::error_code& e, const tcp::endpoint&) {
                          on_connected(e, socket);
                        });
  }

  void on_connected(const boost::system::error_code& ec, const std::shared_ptr<tcp::socket>& socket) {
    connect_timer.cancel();
    if (phase != Phase::kConnecting) return;
    if (ec) {
      last_error = ec == asio::error::operation_aborted
                       ? "connect timed out after " + format_seconds(options.connect_timeout)
                       : ec.message();
      return schedule_retry();
    }
    phase = Phase::kHandshake;
    const std::uint64_t generation = ++channel_generation;
    ch = Channel::create(std::move(*socket));
    ch->start(
        [this, generation](wire::Message&& m) {
          if (generation == channel_generation) on_message(std::move(m));
        },
        [this, generation](const Status& s) {
          if (generation == channel_generation) on_channel_failed(s);
        },
        wire::kMaxHandshakeFrame);
    ch->set_deadline(std::min(Clock::now() + options.handshake_timeout, formation_deadline));
    if (Status s = random_bytes(member_nonce); !s.is_ok()) return finish_formation(s);
    ch->send(wire::Hello{wire::kProtocolVersion, member_nonce});
  }

  void schedule_retry() {
    if (phase == Phase::kDone) return;
    phase = Phase::kConnecting;
    heartbeat_timer.cancel();
    if (ch) {
      ch->close();
      ch.reset();
      ++channel_generation;
    }
    const auto when = std::min(Clock::now() + retry_delay, formation_deadline);
    retry_delay = std::min<Clock::duration>(2 * retry_delay, kMaxRetryDelay);
    retry_timer.expires_at(when);
    retry_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) start_attempt();
    });
  }

  // --- formation -----------------------------------------------------------------------------

  void on_formation_deadline() {
    if (formation_settled) return;
    std::string why;
    if (progress) {
      why = formation_timeout_message(options.formation_timeout, progress->joined, progress->nranks,
                                      progress->missing, progress->missing_total);
    } else if (phase == Phase::kWaiting || phase == Phase::kWelcomed) {
      why = "group formation timed out after " + format_seconds(options.formation_timeout) +
            ": joined the rendezvous root at " + id.address() + ", but the group did not complete";
    } else {
      why = "group formation timed out after " + format_seconds(options.formation_timeout) +
            ": could not reach the rendezvous root at " + id.address() +
            (last_error.empty() ? std::string() : " (last error: " + last_error + ")");
    }
    if (ch && ch->usable() && (phase == Phase::kWaiting || phase == Phase::kWelcomed)) {
      ch->send(wire::Error{StatusCode::kTimeout, "gave up waiting: " + why});  // so that the root can say why
      return finish_formation(Status(StatusCode::kTimeout, why), true);
    }
    finish_formation(Status(StatusCode::kTimeout, why));
  }

  void on_cancelled() {
    if (formation_settled) return;
    const std::string why = "group formation cancelled by this member (rank " +
                            (join_options.rank == kAnyRank ? std::string("any") : std::to_string(join_options.rank)) +
                            ", host " + join_options.host_name + ") before the group of " + id.address() + " formed";
    if (ch && ch->usable() && (phase == Phase::kWaiting || phase == Phase::kWelcomed)) {
      ch->send(wire::Error{StatusCode::kUnavailable, why});  // so that the root can say why it lost us
      return finish_formation(unavailable(why), true);
    }
    finish_formation(unavailable(why));
  }

  // Settles join(). With `flush`, the outcome is reported only once the frames queued for the
  // root (an error telling it why we refuse it) are written, so that both sides can say why.
  void finish_formation(const Status& status, bool flush = false) {
    if (formation_settled) return;
    formation_settled = true;
    formation_timer.cancel();
    if (!status.is_ok()) {
      phase = Phase::kDone;
      heartbeat_timer.cancel();
      retry_timer.cancel();
      connect_timer.cancel();
      resolver.cancel();
      if (ch && ch->usable() && flush) {
        ch->close_after_flush(kLeaveBound, [this, status] { formed.set_value(status); });
        return;
      }
      if (ch) ch->close();
    }
    formed.set_value(status);
  }

  void on_challenge(const wire::Challenge& c) {
    if (c.version != wire::kProtocolVersion)
      return finish_formation(invalid_argument("the rendezvous root at " + id.address() + " speaks protocol version " +
                                               std::to_string(c.version) + ", this member " +
                                               std::to_string(wire::kProtocolVersion)));
    if (!mac_equal(c.proof, root_proof(id.secret(), member_nonce, c.nonce))) {
      // Never send our payload to a root that cannot prove it knows the secret.
      ch->send(wire::Error{StatusCode::kInvalidArgument,
                           "authentication failed: wrong group secret (the member rejected the root's proof)"});
      return finish_formation(invalid_argument(
          "authentication failed: wrong group secret: the rendezvous root at " + id.address() +
          " does not prove knowledge of this id's secret (another group's root, or an impostor); nothing was sent"),
                              true);
    }
    const std::chrono::milliseconds interval(c.heartbeat_interval_ms);
    const std::chrono::milliseconds timeout(c.heartbeat_timeout_ms);
    if (c.heartbeat_interval_ms == 0 || timeout < 2 * interval)
      return finish_formation(corrupt_data("the rendezvous root at " + id.address() +
                                           " sent unusable heartbeat settings (" + std::to_string(c.heartbeat_interval_ms) +
                                           " ms / " + std::to_string(c.heartbeat_timeout_ms) + " ms)"));
    heartbeat_interval = interval;
    heartbeat_timeout = timeout;
    wire::Join join;
    join.rank = join_options.rank;
    join.hosts_root = server != nullptr;
    join.host = join_options.host_name;
    join.payload = join_options.payload;
    join.proof = member_proof(id.secret(), c.nonce, member_nonce, wire::join_body(join));
    ch->send(join);
    phase = Phase::kWaiting;
    ch->set_max_inbound(wire::kMaxFrameBytes);
    ch->set_deadline(Clock::time_point::max());
    ch->set_idle_timeout(heartbeat_timeout);
    arm_heartbeats();
  }

  void on_table(const wire::Table& t) {
    if (t.entries.size() != welcome.nranks)
      return finish_formation(corrupt_data("the rendezvous root sent a table of " + std::to_string(t.entries.size()) +
                                           " ranks for a group of " + std::to_string(welcome.nranks)));
    rank = static_cast<int>(welcome.rank);
    nranks = static_cast<int>(welcome.nranks);
    root_rank = welcome.root_rank;
    peers.reserve(t.entries.size());
    for (const auto& e : t.entries) peers.push_back(PeerInfo{e.host, e.payload});
    phase = Phase::kFormed;
    spdlog::info("tern bootstrap: {} joined a group of {} in {}", peer_label(rank, join_options.host_name), nranks,
                 format_seconds(Clock::now() - join_started));
    finish_formation(Status::ok());
  }

  // --- messages ------------------------------------------------------------------------------

  void on_message(wire::Message&& m) {
    const wire::MsgType type = wire::type_of(m);
    if (type == wire::MsgType::kHeartbeat) return;
    if (phase == Phase::kFormed) return on_formed_message(std::move(m));
    if (phase == Phase::kDone) return;
    if (const auto* error = std::get_if<wire::Error>(&m))  // the root refused this join
      return finish_formation(Status(error->code, error->message));
    if (phase == Phase::kHandshake && type == wire::MsgType::kChallenge)
      return on_challenge(std::get<wire::Challenge>(m));
    if (phase == Phase::kWaiting && type == wire::MsgType::kProgress) {
      progress = std::get<wire::Progress>(std::move(m));
      return;
    }
    if (phase == Phase::kWaiting && type == wire::MsgType::kWelcome) {
      welcome = std::get<wire::Welcome>(m);
      phase = Phase::kWelcomed;
      return;
    }
    if (phase == Phase::kWelcomed && type == wire::MsgType::kTable) return on_table(std::get<wire::Table>(m));
    if (type == wire::MsgType::kGoodbye) {
      last_error = "the rendezvous root shut down";
      return schedule_retry();
    }
    finish_formation(corrupt_data("the rendezvous root at " + id.address() + " sent an unexpected " +
                                  std::string(wire::type_name(type)) + " frame while forming the group"));
  }

  void on_formed_message(wire::Message&& m) {
    if (root_lost) return;
    switch (wire::type_of(m)) {
      case wire::MsgType::kPeerFailed: {
        const auto& f = std::get<wire::PeerFailed>(m);
        if (static_cast<int>(f.rank) < nranks && static_cast<int>(f.rank) != rank)
          peer_failed(static_cast<int>(f.rank), Status(StatusCode::kPeerFailure, f.message),
                      f.kind == wire::FailureKind::kLeft);
        return;
      }
      case wire::MsgType::kGathered: return on_gathered(std::get<wire::Gathered>(std::move(m)));
      case wire::MsgType::kCollectiveFailed: {
        const auto& f = std::get<wire::CollectiveFailed>(m);
        return complete(f.seq, Status(f.code, f.message));
      }
      case wire::MsgType::kGoodbye: return lose_root(Status(), true);
      case wire::MsgType::kError: return lose_root(unavailable(std::get<wire::Error>(m).message), false);
      default:
        return lose_root(corrupt_data("it sent an unexpected " + std::string(wire::type_name(wire::type_of(m))) +
                                      " frame"),
                         false);
    }
  }

  void on_channel_failed(const Status& status) {
    switch (phase) {
      case Phase::kHandshake:
        last_error = status.code() == StatusCode::kTimeout
                         ? "no answer to the handshake within " + format_seconds(options.handshake_timeout)
                         : status.message();
        return schedule_retry();
      case Phase::kWaiting:
      case Phase::kWelcomed:
        // The root dropped or lost this join: join again while the deadline allows.
        last_error = "the connection broke while waiting for the group (" + status.message() + ")";
        return schedule_retry();
      case Phase::kFormed: return lose_root(status, false);
      case Phase::kConnecting:
      case Phase::kDone: return;
    }
  }

  // --- after formation -----------------------------------------------------------------------

  void arm_heartbeats() {
    heartbeat_timer.expires_after(heartbeat_interval);
    heartbeat_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !ch || !ch->usable() || root_lost) return;
      if (!heartbeats_paused.load(std::memory_order_relaxed)) ch->send(heartbeat_frame);
      arm_heartbeats();
    });
  }

  void lose_root(const Status& status, bool clean) {
    if (root_lost) return;
    root_lost = true;
    heartbeat_timer.cancel();
    if (ch) ch->close();
    const std::string who = root_rank >= 0 ? peer_label(root_rank, peers[static_cast<std::size_t>(root_rank)].host) +
                                                 " / the rendezvous root at " + id.address()
                                           : "the rendezvous root at " + id.address();
    std::string why;
    if (clean)
      why = who + " shut down (left the group); failures are no longer detected";
    else if (status.code() == StatusCode::kTimeout)
      why = who + " is unreachable: silent for " + format_seconds(Clock::now() - ch->last_heard()) +
            " (no heartbeat)";
    else
      why = who + " is unreachable: " + status.message();
    peer_failed(root_rank, Status(StatusCode::kPeerFailure, why), clean);
  }

  // `clean`: the peer left on purpose (close(), a root shutting down): logged as news, not a warning.
  void peer_failed(int peer, const Status& why, bool clean = false) {
    std::map<std::uint64_t, std::shared_ptr<Pending>> orphans;
    {
      std::lock_guard lock(mu);
      if (failed.count(peer) != 0) return;
      failed.emplace(peer, why);
      if (broken.is_ok()) broken = why;
      orphans.swap(pending);
    }
    if (clean)
      spdlog::info("tern bootstrap {}: {}", peer_label(rank, join_options.host_name), why.message());
    else
      spdlog::warn("tern bootstrap {}: {}", peer_label(rank, join_options.host_name), why.message());
    for (auto& [seq, p] : orphans)
      p->done.set_value(Status(StatusCode::kPeerFailure, std::string(wire::collective_name(p->kind)) + " #" +
                                                              std::to_string(seq) + " failed: " + why.message()));
    if (join_options.on_peer_failure && !closed_flag()) join_options.on_peer_failure(peer, why);
  }

  bool closed_flag() {
    std::lock_guard lock(mu);
    return closed;
  }

  void on_gathered(wire::Gathered&& g) {
    if (g.data.size() != static_cast<std::size_t>(nranks))
      return lose_root(corrupt_data("it sent " + std::to_string(g.data.size()) + " contributions to collective #" +
                                    std::to_string(g.seq) + " of a group of " + std::to_string(nranks)),
                       false);
    complete(g.seq, GatherResult(std::move(g.data)));
  }

  void complete(std::uint64_t seq, GatherResult result) {
    std::shared_ptr<Pending> p;
    {
      std::lock_guard lock(mu);
      const auto it = pending.find(seq);
      if (it == pending.end()) return;  // it timed out meanwhile
      p = std::move(it->second);
      pending.erase(it);
    }
    p->done.set_value(std::move(result));
  }

  GatherResult collective(wire::CollectiveKind kind, std::span<const std::uint8_t> data,
                          std::optional<std::chrono::milliseconds> timeout) {
    const std::string name(wire::collective_name(kind));
    if (on_io_thread())
      return invalid_argument(name + " called from the bootstrap's own I/O thread (inside on_peer_failure)");
    if (data.size() > kMaxAllgatherBytes)
      return invalid_argument(name + " of " + std::to_string(data.size()) + " bytes: at most " +
                              std::to_string(kMaxAllgatherBytes) + " per member");
    const auto wait = timeout.value_or(options.collective_timeout);
    auto p = std::make_shared<Pending>();
    p->kind = kind;
    auto done = p->done.get_future();
    std::uint64_t seq = 0;
    {
      std::lock_guard lock(mu);
      if (closed) return unavailable(name + ": the bootstrap is closed");
      seq = next_seq++;
      if (!broken.is_ok())
        return Status(StatusCode::kPeerFailure, name + " #" + std::to_string(seq) + " failed: " + broken.message());
      pending.emplace(seq, p);
    }
    asio::post(io, [this, seq, kind, bytes = wire::Bytes(data.begin(), data.end())]() mutable {
      if (ch && ch->usable() && !root_lost) ch->send(wire::Contribute{seq, kind, std::move(bytes)});
    });
    if (done.wait_for(wait) != std::future_status::ready) {
      std::lock_guard lock(mu);
      if (pending.erase(seq) != 0)
        return Status(StatusCode::kTimeout, name + " #" + std::to_string(seq) + " timed out after " +
                                                format_seconds(wait) + ": not every rank of the group of " +
                                                std::to_string(nranks) + " has called it");
    }
    return done.get();
  }

  // --- state ---------------------------------------------------------------------------------

  asio::io_context io;  // first member: destroyed last
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::resolver resolver{io};
  asio::steady_timer retry_timer{io};
  asio::steady_timer connect_timer{io};
  asio::steady_timer formation_timer{io};
  asio::steady_timer heartbeat_timer{io};
  std::thread thread;

  const UniqueId id;
  const JoinOptions join_options;
  const BootstrapOptions options;
  std::unique_ptr<BootstrapServer> server;

  // I/O thread only (and, once formation settled, read-only for everyone).
  Phase phase = Phase::kConnecting;
  std::shared_ptr<Channel> ch;
  std::uint64_t channel_generation = 0;
  wire::Nonce member_nonce{};
  Clock::time_point join_started;
  Clock::time_point formation_deadline;
  Clock::duration retry_delay{};
  std::string last_error;
  std::optional<wire::Progress> progress;
  wire::Welcome welcome;
  std::chrono::milliseconds heartbeat_interval;
  std::chrono::milliseconds heartbeat_timeout;
  Frame heartbeat_frame;
  bool formation_settled = false;
  bool root_lost = false;
  std::promise<Status> formed;
  std::future<Status> formed_future;
  std::atomic<bool> heartbeats_paused{false};
  std::optional<std::stop_callback<std::function<void()>>> cancel_callback;  // until formation settles

  // The formed group: written before formation settles, read-only afterwards.
  int rank = -1;
  int nranks = 0;
  int root_rank = kRendezvousRoot;
  std::vector<PeerInfo> peers;

  // Shared with application threads.
  mutable std::mutex mu;
  bool closed = false;
  std::uint64_t next_seq = 1;
  Status broken;  // the first failure: collectives can no longer complete
  std::map<int, Status> failed;
  std::map<std::uint64_t, std::shared_ptr<Pending>> pending;
};

namespace {

Status validate_join(const UniqueId& id, JoinOptions& jo) {
  if (!id.complete())
    return invalid_argument("bootstrap: the unique id " + id.redacted() +
                            " has port 0 (incomplete): use the id returned by BootstrapServer::id()");
  if (jo.rank < kAnyRank || jo.rank >= kMaxBootstrapRanks)
    return invalid_argument("bootstrap: requested rank " + std::to_string(jo.rank) + " is not a rank or kAnyRank");
  if (jo.payload.size() > kMaxBootstrapPayloadBytes)
    return invalid_argument("bootstrap: payload of " + std::to_string(jo.payload.size()) + " bytes; at most " +
                            std::to_string(kMaxBootstrapPayloadBytes));
  if (jo.host_name.empty()) {
    boost::system::error_code ec;
    jo.host_name = asio::ip::host_name(ec);
    if (ec || !wire::valid_host(jo.host_name)) jo.host_name = "unknown-host";
  }
  if (!wire::valid_host(jo.host_name))
    return invalid_argument("bootstrap: host name of " + std::to_string(jo.host_name.size()) +
                            " bytes must be 1-255 printable ASCII characters without spaces");
  return Status::ok();
}

}  // namespace

Bootstrap::Bootstrap(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Bootstrap::~Bootstrap() {
  if (impl_ && impl_->on_io_thread()) {
    spdlog::critical("tern bootstrap: a Bootstrap was destroyed inside its own on_peer_failure callback");
    std::terminate();  // joining our own thread cannot work; fail loudly rather than hang
  }
  (void)close();
}

Result<std::unique_ptr<Bootstrap>> Bootstrap::join(const UniqueId& id, JoinOptions join_options,
                                                   const BootstrapOptions& options) {
  init_logging();
  TERN_CHECK(validate(options));
  TERN_CHECK(validate_join(id, join_options));
  try {
    auto impl = std::make_unique<Impl>(id, std::move(join_options), options, nullptr);
    impl->begin();
    TERN_CHECK(impl->wait_formed());
    return std::unique_ptr<Bootstrap>(new Bootstrap(std::move(impl)));
  } catch (const std::exception& e) {
    return internal_error(std::string("bootstrap: cannot join: ") + e.what());
  }
}

Result<std::unique_ptr<Bootstrap>> Bootstrap::join(std::unique_ptr<BootstrapServer> server, JoinOptions join_options,
                                                   const BootstrapOptions& options) {
  init_logging();
  if (!server) return invalid_argument("bootstrap: join() with a null server");
  const UniqueId id = server->id();
  TERN_CHECK(validate(options));
  TERN_CHECK(validate_join(id, join_options));
  try {
    auto impl = std::make_unique<Impl>(id, std::move(join_options), options, std::move(server));
    impl->begin();
    TERN_CHECK(impl->wait_formed());
    return std::unique_ptr<Bootstrap>(new Bootstrap(std::move(impl)));
  } catch (const std::exception& e) {
    return internal_error(std::string("bootstrap: cannot join: ") + e.what());
  }
}

int Bootstrap::rank() const noexcept { return impl_->rank; }
int Bootstrap::size() const noexcept { return impl_->nranks; }
const std::vector<PeerInfo>& Bootstrap::peers() const noexcept { return impl_->peers; }
int Bootstrap::root_rank() const noexcept { return impl_->root_rank; }

std::string Bootstrap::peer_name(int r) const {
  if (r < 0 || r >= impl_->nranks)
    return "rank " + std::to_string(r) + " (not in the group of " + std::to_string(impl_->nranks) + ")";
  return peer_label(r, impl_->peers[static_cast<std::size_t>(r)].host);
}

Result<std::vector<std::vector<std::uint8_t>>> Bootstrap::allgather(std::span<const std::uint8_t> data,
                                                                    std::optional<std::chrono::milliseconds> timeout) {
  return impl_->collective(wire::CollectiveKind::kAllgather, data, timeout);
}

Status Bootstrap::barrier(std::optional<std::chrono::milliseconds> timeout) {
  auto result = impl_->collective(wire::CollectiveKind::kBarrier, {}, timeout);
  return result.is_ok() ? Status::ok() : result.status();
}

std::vector<FailedPeer> Bootstrap::failed_peers() const {
  std::lock_guard lock(impl_->mu);
  std::vector<FailedPeer> out;
  for (const auto& [r, status] : impl_->failed) out.push_back({r, status});
  return out;
}

Status Bootstrap::close() { return impl_->close(); }

void Bootstrap::pause_heartbeats_for_testing(bool paused) {
  impl_->heartbeats_paused.store(paused, std::memory_order_relaxed);
}

}  // namespace tern::transport
