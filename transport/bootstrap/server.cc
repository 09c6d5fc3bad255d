// The rendezvous root. All protocol state lives on the I/O thread (no locks); what application
// threads may read (formation status, rejections, failures) is copied under `mu`.
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
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
constexpr std::size_t kMaxRejectionsKept = 64;
constexpr std::size_t kMaxOpenCollectives = 256;
constexpr auto kProgressCoalesce = std::chrono::milliseconds(20);
constexpr auto kFlushBound = std::chrono::seconds(1);
}  // namespace

struct BootstrapServer::Impl {
  enum class Phase { kHello, kAwaitJoin, kWaiting, kMember, kClosing };
  enum class Group { kForming, kFormed, kFailed, kStopped };

  struct Conn {
    std::shared_ptr<Channel> ch;
    Phase phase = Phase::kHello;
    wire::Nonce member_nonce{};
    wire::Nonce root_nonce{};
    int requested = kAnyRank;
    bool hosts_root = false;
    std::string host;
    wire::Bytes payload;
    std::uint64_t join_order = 0;
    int rank = -1;
    std::uint64_t last_seq = 0;
  };

  struct Collective {
    wire::CollectiveKind kind = wire::CollectiveKind::kAllgather;
    int first_rank = 0;
    std::vector<wire::Bytes> data;
    std::size_t count = 0;
    std::size_t bytes = 0;
    bool failed = false;
  };

  Impl(const UniqueId& unique_id, int n, const BootstrapOptions& o)
      : id(unique_id), nranks(n), options(o), requested_by(static_cast<std::size_t>(n), 0) {}

  ~Impl() { shutdown(); }

  // --- setup and teardown (application thread) ----------------------------------------------

  Status listen() {
    const std::string host = options.listen_address.empty() ? id.host() : options.listen_address;
    tcp::resolver resolver(io);
    boost::system::error_code ec;
    const auto endpoints = resolver.resolve(host, std::to_string(id.port()),
                                            tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) return unavailable("bootstrap root: cannot resolve listen address " + host + ": " + ec.message());
    std::string last_error = "no address";
    for (const auto& entry : endpoints) {
      const tcp::endpoint ep = entry.endpoint();
      boost::system::error_code e;
      acceptor.open(ep.protocol(), e);
      if (!e) acceptor.set_option(tcp::acceptor::reuse_address(true), e);
      if (!e) acceptor.bind(ep, e);
      if (!e) acceptor.listen(asio::socket_base::max_listen_connections, e);
      if (!e) {
        const auto bound = acceptor.local_endpoint(e);
        if (!e) {
          id = id.with_port(bound.port());
          label = "tern bootstrap root " + id.address();
          return Status::ok();
        }
      }
      last_error = endpoint_string(ep) + ": " + e.message();
      boost::system::error_code ignored;
      acceptor.close(ignored);
    }
    return unavailable("bootstrap root: cannot listen on " + host + " port " + std::to_string(id.port()) + " (" +
                       last_error + ")");
  }

  void begin() {
    started = Clock::now();
    heartbeat_frame = make_frame(wire::Heartbeat{});
    do_accept();
    formation_timer.expires_at(started + options.formation_timeout);
    formation_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) on_formation_deadline();
    });
    arm_heartbeats();
    thread = std::thread([this] { run(); });
  }

  void run() {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {  // a handler threw (allocation failure): keep serving
        spdlog::error("{}: unexpected exception on the I/O thread: {}", label, e.what());
      }
    }
  }

  void shutdown() {
    if (!thread.joinable()) return;
    std::promise<void> flushed;
    asio::post(io, [this, &flushed] { stop_serving(flushed); });
    flushed.get_future().wait_for(2 * kFlushBound);
    work.reset();
    io.stop();
    thread.join();
    conns.clear();
  }

  // Tells every member and waiting joiner that the root shuts down, then waits for the goodbyes
  // to be written (bounded).
  void stop_serving(std::promise<void>& flushed) {
    group = Group::kStopped;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    formation_timer.cancel();
    heartbeat_timer.cancel();
    progress_timer.cancel();
    accept_retry_timer.cancel();
    {
      std::lock_guard lock(mu);
      if (!formation_done) {
        formation_done = true;
        formation_status = unavailable("the rendezvous root shut down before the group formed");
      }
    }
    cv.notify_all();
    auto remaining = std::make_shared<std::size_t>(1);
    const auto done = [remaining, &flushed] {
      if (--*remaining == 0) flushed.set_value();
    };
    const Frame goodbye = make_frame(wire::Goodbye{});
    for (auto& [cid, c] : conns) {
      if (c.phase == Phase::kWaiting || c.phase == Phase::kMember) {
        c.ch->send(goodbye);
        c.phase = Phase::kClosing;
        ++*remaining;
        c.ch->close_after_flush(kFlushBound, done);
      } else if (c.phase != Phase::kClosing) {
        c.ch->close();
      }
    }
    done();
  }

  // --- accepting -----------------------------------------------------------------------------

  void do_accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      on_accept(ec, std::move(socket));
    });
  }

  void on_accept(const boost::system::error_code& ec, tcp::socket socket) {
    if (group == Group::kStopped || ec == asio::error::operation_aborted) return;
    if (ec) {  // e.g. out of file descriptors: back off instead of spinning
      spdlog::warn("{}: accept failed: {}", label, ec.message());
      accept_retry_timer.expires_after(std::chrono::milliseconds(100));
      accept_retry_timer.async_wait([this](const boost::system::error_code& e) {
        if (!e) do_accept();
      });
      return;
    }
    if (handshakes >= options.max_pending_handshakes) {
      boost::system::error_code e;
      const auto remote = socket.remote_endpoint(e);
      reject_quietly((e ? std::string("unknown peer") : endpoint_string(remote)) + ": refused: " +
                     std::to_string(handshakes) + " handshakes already in progress");
      socket.close(e);
      do_accept();
      return;
    }
    const std::uint64_t cid = next_conn_id++;
    Conn& c = conns[cid];
    c.ch = Channel::create(std::move(socket));
    ++handshakes;
    c.ch->start([this, cid](wire::Message&& m) { on_message(cid, std::move(m)); },
                [this, cid](const Status& s) { on_conn_failed(cid, s); }, wire::kMaxHandshakeFrame);
    c.ch->set_deadline(Clock::now() + options.handshake_timeout);
    do_accept();
  }

  void set_phase(Conn& c, Phase phase) {
    const bool was = c.phase == Phase::kHello || c.phase == Phase::kAwaitJoin;
    const bool is = phase == Phase::kHello || phase == Phase::kAwaitJoin;
    if (was && !is) --handshakes;
    c.phase = phase;
  }

  void reject_quietly(std::string what) {
    std::lock_guard lock(mu);
    rejections.push_back(std::move(what));
    if (rejections.size() > kMaxRejectionsKept) rejections.pop_front();
  }

  // Drops a connection that has not joined: records why, tells the peer when it is worth it.
  void reject(std::uint64_t cid, Conn& c, StatusCode code, const std::string& why, bool tell_peer = true) {
    spdlog::warn("{}: rejected {}: {}", label, c.ch->peer(), why);
    reject_quietly(c.ch->peer() + ": " + why);
    set_phase(c, Phase::kClosing);
    if (!tell_peer) {
      c.ch->close();
      conns.erase(cid);
      return;
    }
    c.ch->send(wire::Error{code, why});
    c.ch->close_after_flush(kFlushBound, [this, cid] { conns.erase(cid); });
  }

  // --- messages ------------------------------------------------------------------------------

  void on_message(std::uint64_t cid, wire::Message&& m) {
    const auto it = conns.find(cid);
    if (it == conns.end()) return;
    Conn& c = it->second;
    switch (c.phase) {
      case Phase::kHello: return on_hello(cid, c, m);
      case Phase::kAwaitJoin: return on_join(cid, c, m);
      case Phase::kWaiting:
      case Phase::kMember: return on_member_message(cid, c, m);
      case Phase::kClosing: return;
    }
  }

  void on_hello(std::uint64_t cid, Conn& c, const wire::Message& m) {
    const auto* hello = std::get_if<wire::Hello>(&m);
    if (hello == nullptr)
      return reject(cid, c, StatusCode::kCorruptData,
                    "expected a hello, got a " + std::string(wire::type_name(wire::type_of(m))) + " frame", false);
    if (hello->version != wire::kProtocolVersion)
      return reject(cid, c, StatusCode::kInvalidArgument,
                    "protocol version mismatch: the member speaks version " + std::to_string(hello->version) +
                        ", this root speaks " + std::to_string(wire::kProtocolVersion));
    c.member_nonce = hello->nonce;
    if (Status s = random_bytes(c.root_nonce); !s.is_ok()) return reject(cid, c, s.code(), s.message());
    wire::Challenge challenge;
    challenge.nonce = c.root_nonce;
    challenge.proof = root_proof(id.secret(), c.member_nonce, c.root_nonce);
    challenge.heartbeat_interval_ms = to_wire_ms(options.heartbeat_interval);
    challenge.heartbeat_timeout_ms = to_wire_ms(options.heartbeat_timeout);
    c.ch->send(challenge);
    c.phase = Phase::kAwaitJoin;
    c.ch->set_max_inbound(wire::kMaxJoinFrame);
  }

  void on_join(std::uint64_t cid, Conn& c, const wire::Message& m) {
    if (const auto* error = std::get_if<wire::Error>(&m)) {  // the member did not accept our proof
      spdlog::warn("{}: {} refused this root: {}", label, c.ch->peer(), error->message);
      reject_quietly(c.ch->peer() + ": " + error->message);
      set_phase(c, Phase::kClosing);
      c.ch->close();
      conns.erase(cid);
      return;
    }
    const auto* join = std::get_if<wire::Join>(&m);
    if (join == nullptr)
      return reject(cid, c, StatusCode::kCorruptData,
                    "expected a join, got a " + std::string(wire::type_name(wire::type_of(m))) + " frame", false);
    const wire::Mac expected = member_proof(id.secret(), c.root_nonce, c.member_nonce, wire::join_body(*join));
    if (!mac_equal(expected, join->proof))
      return reject(cid, c, StatusCode::kInvalidArgument, "authentication failed: wrong group secret");
    // Authenticated from here on.
    if (group == Group::kFormed)
      return reject(cid, c, StatusCode::kInvalidArgument,
                    "the group of " + std::to_string(nranks) + " ranks has already formed; no more joins");
    if (group != Group::kForming) {
      std::lock_guard lock(mu);
      return reject(cid, c, formation_status.code(), formation_status.message());
    }
    if (join->rank >= nranks)
      return reject(cid, c, StatusCode::kInvalidArgument,
                    "requested rank " + std::to_string(join->rank) + " is out of range for a group of " +
                        std::to_string(nranks) + " ranks");
    if (join->rank >= 0) {
      const std::uint64_t holder = requested_by[static_cast<std::size_t>(join->rank)];
      if (holder != 0) {
        const auto h = conns.find(holder);
        const std::string by = h == conns.end() ? std::string("another member")
                                                : "host " + h->second.host + " (joined from " + h->second.ch->peer() + ")";
        return reject(cid, c, StatusCode::kInvalidArgument,
                      "requested rank " + std::to_string(join->rank) + " is already taken by " + by);
      }
      requested_by[static_cast<std::size_t>(join->rank)] = cid;
    }
    set_phase(c, Phase::kWaiting);
    c.requested = join->rank;
    c.hosts_root = join->hosts_root;
    c.host = join->host;
    c.payload = join->payload;
    c.join_order = next_join_order++;
    ++waiting;
    joined_count.store(static_cast<int>(waiting), std::memory_order_relaxed);
    c.ch->set_max_inbound(wire::kMaxMemberFrame);
    c.ch->set_deadline(Clock::time_point::max());
    c.ch->set_idle_timeout(options.heartbeat_timeout);
    spdlog::info("{}: host {} ({}) joined{}; {} of {}", label, c.host, c.ch->peer(),
                 c.requested >= 0 ? " as rank " + std::to_string(c.requested) : std::string(), waiting, nranks);
    if (waiting == static_cast<std::size_t>(nranks)) return form();
    schedule_progress();
  }

  void on_member_message(std::uint64_t cid, Conn& c, const wire::Message& m) {
    switch (wire::type_of(m)) {
      case wire::MsgType::kHeartbeat: return;  // the channel noted the time
      case wire::MsgType::kLeave:
        if (c.phase == Phase::kWaiting) {
          drop_joiner(cid, c, "left before the group formed");
          return;
        }
        report_failure(c.rank, wire::FailureKind::kLeft, 0, peer_label(c.rank, c.host) + " left the group");
        c.phase = Phase::kClosing;
        c.ch->close_after_flush(kFlushBound, [this, cid] { conns.erase(cid); });
        return;
      case wire::MsgType::kContribute:
        if (c.phase == Phase::kMember) return on_contribute(cid, c, std::get<wire::Contribute>(m));
        break;
      case wire::MsgType::kError:
        if (c.phase == Phase::kMember) {
          const auto& error = std::get<wire::Error>(m);
          return lose_member(cid, c, unavailable("it reported: " + error.message));
        }
        drop_joiner(cid, c, "it reported: " + std::get<wire::Error>(m).message);
        return;
      default: break;
    }
    const std::string why = "protocol violation: unexpected " + std::string(wire::type_name(wire::type_of(m))) +
                            " frame";
    if (c.phase == Phase::kWaiting) {
      drop_joiner(cid, c, why);
      return;
    }
    c.ch->send(wire::Error{StatusCode::kCorruptData, why});
    lose_member(cid, c, corrupt_data(why));
  }

  // --- formation -----------------------------------------------------------------------------

  // Ranks nobody requested, minus those the any-rank joiners will fill (in join order).
  std::vector<std::uint32_t> missing_ranks() const {
    std::size_t any = 0;
    for (const auto& [cid, c] : conns)
      if (c.phase == Phase::kWaiting && c.requested < 0) ++any;
    std::vector<std::uint32_t> missing;
    for (std::size_t r = 0; r < requested_by.size(); ++r) {
      if (requested_by[r] != 0) continue;
      if (any > 0) {
        --any;
        continue;
      }
      missing.push_back(static_cast<std::uint32_t>(r));
    }
    return missing;
  }

  wire::Progress progress() const {
    wire::Progress p;
    p.nranks = static_cast<std::uint32_t>(nranks);
    p.joined = static_cast<std::uint32_t>(waiting);
    p.missing = missing_ranks();
    p.missing_total = static_cast<std::uint32_t>(p.missing.size());
    if (p.missing.size() > wire::kMaxListedMissing) p.missing.resize(wire::kMaxListedMissing);
    return p;
  }

  void schedule_progress() {
    if (progress_scheduled) return;
    progress_scheduled = true;
    progress_timer.expires_after(kProgressCoalesce);
    progress_timer.async_wait([this](const boost::system::error_code& ec) {
      progress_scheduled = false;
      if (ec || group != Group::kForming) return;
      const Frame frame = make_frame(progress());
      for (auto& [cid, c] : conns)
        if (c.phase == Phase::kWaiting) c.ch->send(frame);
    });
  }

  void drop_joiner(std::uint64_t cid, Conn& c, const std::string& why) {
    spdlog::warn("{}: host {} ({}) dropped out before the group formed: {}", label, c.host, c.ch->peer(), why);
    if (c.requested >= 0) requested_by[static_cast<std::size_t>(c.requested)] = 0;
    --waiting;
    joined_count.store(static_cast<int>(waiting), std::memory_order_relaxed);
    c.ch->close();
    conns.erase(cid);
    schedule_progress();
  }

  void form() {
    std::vector<std::uint64_t> by_rank(static_cast<std::size_t>(nranks), 0);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> any;  // (join order, conn id)
    for (auto& [cid, c] : conns) {
      if (c.phase != Phase::kWaiting) continue;
      if (c.requested >= 0)
        by_rank[static_cast<std::size_t>(c.requested)] = cid;
      else
        any.emplace_back(c.join_order, cid);
    }
    std::sort(any.begin(), any.end());
    std::size_t next = 0;
    for (const auto& [order, cid] : any) {
      while (by_rank[next] != 0) ++next;
      by_rank[next] = cid;
    }
    std::uint64_t root_order = UINT64_MAX;
    wire::Table table;
    table.entries.resize(by_rank.size());
    for (std::size_t r = 0; r < by_rank.size(); ++r) {
      Conn& c = conns.at(by_rank[r]);
      c.rank = static_cast<int>(r);
      if (c.hosts_root && c.join_order < root_order) {
        root_order = c.join_order;
        root_rank = c.rank;
      }
      table.entries[r].host = c.host;
      table.entries[r].payload = std::move(c.payload);
    }
    const Frame table_frame = make_frame(table);
    for (std::size_t r = 0; r < by_rank.size(); ++r) {
      Conn& c = conns.at(by_rank[r]);
      c.phase = Phase::kMember;
      c.ch->send(wire::Welcome{static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(nranks), root_rank});
      c.ch->send(table_frame);
    }
    group = Group::kFormed;
    formation_timer.cancel();
    progress_timer.cancel();
    {
      std::lock_guard lock(mu);
      formation_done = true;
      formation_status = Status::ok();
    }
    cv.notify_all();
    spdlog::info("{}: group of {} formed in {}", label, nranks, format_seconds(Clock::now() - started));
  }

  void on_formation_deadline() {
    if (group != Group::kForming) return;
    const wire::Progress p = progress();
    const std::string why =
        formation_timeout_message(options.formation_timeout, p.joined, p.nranks, p.missing, p.missing_total);
    group = Group::kFailed;
    progress_timer.cancel();
    {
      std::lock_guard lock(mu);
      formation_done = true;
      formation_status = Status(StatusCode::kTimeout, why);
    }
    cv.notify_all();
    spdlog::warn("{}: {}", label, why);
    const Frame frame = make_frame(wire::Error{StatusCode::kTimeout, why});
    for (auto& [cid, c] : conns) {
      if (c.phase != Phase::kWaiting) continue;
      c.phase = Phase::kClosing;
      c.ch->send(frame);
      const std::uint64_t id_copy = cid;
      c.ch->close_after_flush(kFlushBound, [this, id_copy] { conns.erase(id_copy); });
    }
  }

  // --- liveness ------------------------------------------------------------------------------

  void arm_heartbeats() {
    heartbeat_timer.expires_after(options.heartbeat_interval);
    heartbeat_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || group == Group::kStopped) return;
      for (auto& [cid, c] : conns)
        if (c.phase == Phase::kWaiting || c.phase == Phase::kMember) c.ch->send(heartbeat_frame);
      arm_heartbeats();
    });
  }

  void on_conn_failed(std::uint64_t cid, const Status& status) {
    const auto it = conns.find(cid);
    if (it == conns.end()) return;
    Conn& c = it->second;
    switch (c.phase) {
      case Phase::kHello:
      case Phase::kAwaitJoin: {
        const std::string why = status.code() == StatusCode::kTimeout
                                    ? "handshake not completed within " + format_seconds(options.handshake_timeout)
                                    : status.message();
        spdlog::warn("{}: dropped {} during the handshake: {}", label, c.ch->peer(), why);
        reject_quietly(c.ch->peer() + ": " + why);
        set_phase(c, Phase::kClosing);
        conns.erase(it);
        return;
      }
      case Phase::kWaiting:
        return drop_joiner(cid, c,
                           status.code() == StatusCode::kTimeout
                               ? "silent for " + format_seconds(Clock::now() - c.ch->last_heard())
                               : status.message());
      case Phase::kMember: return lose_member(cid, c, status);
      case Phase::kClosing: conns.erase(it); return;
    }
  }

  void lose_member(std::uint64_t cid, Conn& c, const Status& status) {
    const int rank = c.rank;
    if (status.code() == StatusCode::kTimeout) {
      const auto silent = Clock::now() - c.ch->last_heard();
      report_failure(rank, wire::FailureKind::kSilent,
                     static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()),
                     peer_label(rank, c.host) + " is silent for " + format_seconds(silent) +
                         " (no heartbeat: the process may be stopped or hung, or the network partitioned)");
    } else {
      report_failure(rank, wire::FailureKind::kConnectionLost, 0,
                     peer_label(rank, c.host) + " left: its connection to the rendezvous root broke (" +
                         status.message() + "; the process probably died)");
    }
    c.ch->close();
    conns.erase(cid);
  }

  void report_failure(int rank, wire::FailureKind kind, std::uint32_t silent_ms, const std::string& message) {
    {
      std::lock_guard lock(mu);
      if (failed.count(rank) != 0) return;
      failed.emplace(rank, Status(StatusCode::kPeerFailure, message));
    }
    if (kind == wire::FailureKind::kLeft)
      spdlog::info("{}: {}", label, message);
    else
      spdlog::warn("{}: {}", label, message);
    broken = true;
    collectives.clear();  // they cannot complete; every member fails its own on this message
    const Frame frame = make_frame(wire::PeerFailed{static_cast<std::uint32_t>(rank), kind, silent_ms, message});
    for (auto& [cid, c] : conns)
      if (c.phase == Phase::kMember && c.rank != rank) c.ch->send(frame);
  }

  // --- collectives ---------------------------------------------------------------------------

  void broadcast_members(const Frame& frame) {
    for (auto& [cid, c] : conns)
      if (c.phase == Phase::kMember) c.ch->send(frame);
  }

  void on_contribute(std::uint64_t cid, Conn& c, const wire::Contribute& m) {
    if (m.seq != c.last_seq + 1 || (collectives.size() >= kMaxOpenCollectives && collectives.count(m.seq) == 0)) {
      const std::string why = m.seq != c.last_seq + 1
                                  ? "collective #" + std::to_string(m.seq) + " out of sequence (expected #" +
                                        std::to_string(c.last_seq + 1) + ")"
                                  : "more than " + std::to_string(kMaxOpenCollectives) + " collectives open";
      c.ch->send(wire::Error{StatusCode::kCorruptData, "protocol violation: " + why});
      return lose_member(cid, c, corrupt_data("protocol violation: " + why));
    }
    c.last_seq = m.seq;
    if (broken) return;  // members fail their collectives on the failure notice
    auto [it, fresh] = collectives.try_emplace(m.seq);
    Collective& k = it->second;
    const auto n = static_cast<std::size_t>(nranks);
    if (fresh) {
      k.kind = m.kind;
      k.first_rank = c.rank;
      k.data.resize(n);
    }
    ++k.count;
    if (!k.failed) {
      std::string why;
      StatusCode code = StatusCode::kInvalidArgument;
      if (m.kind != k.kind) {
        why = "collective #" + std::to_string(m.seq) + " mismatch: rank " + std::to_string(k.first_rank) +
              " called " + std::string(wire::collective_name(k.kind)) + ", rank " + std::to_string(c.rank) +
              " called " + std::string(wire::collective_name(m.kind));
      } else if (k.bytes + m.data.size() + 4 * n + 64 > wire::kMaxFrameBytes) {
        code = StatusCode::kOutOfRange;
        why = "allgather #" + std::to_string(m.seq) + ": the contributions exceed the " +
              std::to_string(wire::kMaxFrameBytes) + "-byte limit of one result";
      }
      if (!why.empty()) {
        k.failed = true;
        k.data.clear();
        spdlog::warn("{}: {}", label, why);
        broadcast_members(make_frame(wire::CollectiveFailed{m.seq, code, why}));
      } else {
        k.bytes += m.data.size();
        k.data[static_cast<std::size_t>(c.rank)] = m.data;
      }
    }
    if (k.count < n) return;
    if (!k.failed) broadcast_members(make_frame(wire::Gathered{m.seq, k.kind, std::move(k.data)}));
    collectives.erase(it);
  }

  // --- state ---------------------------------------------------------------------------------

  asio::io_context io;  // first member: destroyed last, after everything that uses it
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  asio::steady_timer formation_timer{io};
  asio::steady_timer heartbeat_timer{io};
  asio::steady_timer progress_timer{io};
  asio::steady_timer accept_retry_timer{io};
  std::thread thread;

  UniqueId id;
  const int nranks;
  const BootstrapOptions options;
  std::string label = "tern bootstrap root";
  Clock::time_point started;
  Frame heartbeat_frame;

  // I/O thread only.
  std::map<std::uint64_t, Conn> conns;
  std::uint64_t next_conn_id = 1;
  std::uint64_t next_join_order = 1;
  std::size_t handshakes = 0;
  std::size_t waiting = 0;
  std::vector<std::uint64_t> requested_by;  // rank -> conn id that requested it (0: none)
  Group group = Group::kForming;
  bool progress_scheduled = false;
  int root_rank = kRendezvousRoot;
  bool broken = false;
  std::map<std::uint64_t, Collective> collectives;

  // Shared with application threads.
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool formation_done = false;
  Status formation_status;
  std::deque<std::string> rejections;
  std::map<int, Status> failed;
  std::atomic<int> joined_count{0};
};

BootstrapServer::BootstrapServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BootstrapServer::~BootstrapServer() = default;

Result<std::unique_ptr<BootstrapServer>> BootstrapServer::start(const UniqueId& id, int nranks,
                                                                const BootstrapOptions& options) {
  init_logging();
  if (nranks < 1 || nranks > kMaxBootstrapRanks)
    return invalid_argument("bootstrap root: group size " + std::to_string(nranks) + " is out of range [1, " +
                            std::to_string(kMaxBootstrapRanks) + "]");
  TERN_CHECK(validate(options));
  try {
    auto impl = std::make_unique<Impl>(id, nranks, options);
    TERN_CHECK(impl->listen());
    impl->begin();
    spdlog::info("{}: waiting for {} ranks (formation deadline {})", impl->label, nranks,
                 format_seconds(options.formation_timeout));
    return std::unique_ptr<BootstrapServer>(new BootstrapServer(std::move(impl)));
  } catch (const std::exception& e) {  // thread creation, allocation
    return internal_error(std::string("bootstrap root: cannot start: ") + e.what());
  }
}

const UniqueId& BootstrapServer::id() const noexcept { return impl_->id; }
int BootstrapServer::size() const noexcept { return impl_->nranks; }
int BootstrapServer::joined() const noexcept { return impl_->joined_count.load(std::memory_order_relaxed); }

Status BootstrapServer::wait_formed(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  if (!impl_->cv.wait_for(lock, timeout, [this] { return impl_->formation_done; }))
    return Status(StatusCode::kTimeout, "the rendezvous root is still waiting for the group after " +
                                            format_seconds(timeout));
  return impl_->formation_status;
}

std::vector<std::string> BootstrapServer::rejections() const {
  std::lock_guard lock(impl_->mu);
  return {impl_->rejections.begin(), impl_->rejections.end()};
}

std::vector<FailedPeer> BootstrapServer::failed_peers() const {
  std::lock_guard lock(impl_->mu);
  std::vector<FailedPeer> out;
  for (const auto& [rank, status] : impl_->failed) out.push_back({rank, status});
  return out;
}

}  // namespace tern::transport
