// Bootstrap: how a group of N processes forms (like NCCL's unique id + bootstrap, but
// authenticated), and the group's control plane afterwards: failure detection by heartbeats and
// small collectives (allgather, barrier) through the rendezvous root.
//
// How a group forms:
//   1. One process starts a BootstrapServer (the rendezvous root) with a fresh UniqueId: the
//      server listens first, so an id whose port was 0 is complete only once the server returns
//      it (BootstrapServer::id()). The id's text form is distributed out of band (a launcher, an
//      environment variable, a file); it holds the group secret, so treat it as a credential.
//   2. Every member (the root's own process too, usually as rank 0) calls Bootstrap::join() with
//      the id, an optional requested rank and an opaque payload (the transport's worker address).
//      Members may start before the root listens: join() retries connecting until its deadline.
//   3. Each joiner and the root authenticate each other by challenge-response HMAC-SHA256 over
//      fresh nonces; the secret itself never goes on the wire. When N members have joined, the
//      root assigns ranks and sends everyone the table rank -> (host, payload): an allgather of
//      the payloads. join() returns the formed group.
//
// Threading contract:
//  - A Bootstrap (member) and a BootstrapServer each run their own I/O thread, which sends and
//    checks heartbeats and serves the protocol. Heartbeats therefore keep flowing while the
//    application's threads are busy or blocked.
//  - Every public method may be called from any application thread, concurrently, except the
//    destructor (one thread, once no other call is running). Accessors of the formed group
//    (rank(), size(), peers(), peer_name()) never block.
//  - join(), allgather(), barrier(), close() and BootstrapServer::wait_formed() block the calling
//    thread, each up to its own deadline. They must not be called from the on_peer_failure
//    callback (they fail with kInvalidArgument there instead of deadlocking).
//  - on_peer_failure runs on the bootstrap's I/O thread. It must return promptly (a callback
//    that blocks for longer than the heartbeat timeout delays heartbeats: the root would report
//    this member as silent), and it must not destroy the Bootstrap. It may call failed_peers(),
//    rank(), size(), peers() and peer_name(), and it may hand work to other threads.
//
// Deadlines: connecting (with retries), the handshake, formation, every allgather and barrier.
// Failures are reported once, with the values that explain them ("group formation timed out
// after 30 s: 3 of 4 ranks joined (missing: rank 2)"). Nothing here throws.
//
// Security: see docs/bootstrap.md. In short: a process without the secret cannot join, and a
// member never sends its payload to a root that cannot prove it knows the secret; nonces are
// fresh per connection, so recorded handshakes cannot be replayed. Frames are NOT encrypted and,
// after the handshake, not integrity-protected: payloads (worker addresses) are visible on the
// network, and an on-path attacker can disturb a formed group.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "tern/common/status.h"

namespace tern::transport {

/// JoinOptions::rank value meaning "any rank": the root fills unrequested ranks in join order.
inline constexpr int kAnyRank = -1;
/// on_peer_failure's rank when the lost party is a rendezvous root that hosts no member (a
/// standalone BootstrapServer, e.g. in a daemon). When the root runs inside a member's process
/// (Bootstrap::join with a server), that member's rank is reported instead.
inline constexpr int kRendezvousRoot = -1;

/// Largest payload a member may announce (JoinOptions::payload).
inline constexpr std::size_t kMaxBootstrapPayloadBytes = std::size_t{64} << 10;
/// Largest contribution of one member to allgather().
inline constexpr std::size_t kMaxAllgatherBytes = std::size_t{1} << 20;
/// Largest group.
inline constexpr int kMaxBootstrapRanks = 65536;

/// The rendezvous address plus a 32-byte random group secret. Copyable value.
///
/// Text form (copy-paste friendly, one token): `tern1:HOST:PORT:SECRET` where SECRET is 64
/// lowercase hex digits and an IPv6 HOST is bracketed (`tern1:[fe80::1]:29500:...`). The text
/// form contains the secret; nothing in tern logs it or puts it in an error message.
class UniqueId {
 public:
  static constexpr std::size_t kSecretBytes = 32;
  using Secret = std::array<std::uint8_t, kSecretBytes>;

  /// A fresh id with a secret from the OS CSPRNG (OpenSSL RAND_bytes). `host` is the name or
  /// address members connect to; `port` 0 means "let the root pick a free port": such an id is
  /// incomplete until BootstrapServer::start() binds and returns the completed id.
  /// kInvalidArgument for an empty or malformed host; kUnavailable if no randomness is available.
  static Result<UniqueId> generate(std::string host, std::uint16_t port);

  /// Parses the text form. kInvalidArgument, saying which part is wrong (never echoing the secret).
  static Result<UniqueId> parse(std::string_view text);

  UniqueId(const UniqueId&) = default;
  UniqueId(UniqueId&&) noexcept = default;
  UniqueId& operator=(const UniqueId&) = default;
  UniqueId& operator=(UniqueId&&) noexcept = default;
  ~UniqueId();  ///< wipes the secret

  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }
  /// False while the port is 0 (see generate()).
  bool complete() const noexcept { return port_ != 0; }
  /// The raw group secret (the handshake's HMAC key). Never log it or send it anywhere.
  const Secret& secret() const noexcept { return secret_; }

  /// The text form, secret included: hand it only to the group's members.
  std::string to_string() const;
  /// `tern1:HOST:PORT:<secret>`: safe for logs.
  std::string redacted() const;
  /// "HOST:PORT" (IPv6 bracketed): the rendezvous address alone.
  std::string address() const;

  /// The same id (same secret) with another port; used by the root once it has bound.
  UniqueId with_port(std::uint16_t port) const;

  friend bool operator==(const UniqueId& a, const UniqueId& b) noexcept;

 private:
  UniqueId(std::string host, std::uint16_t port, const Secret& secret);
  std::string host_;
  std::uint16_t port_ = 0;
  Secret secret_{};
};

/// Deadlines and heartbeat settings. Defaults suit a cluster; tests use milliseconds.
struct BootstrapOptions {
  /// join(): how long to wait for the whole group, connecting retries included. The root: how
  /// long after start() it waits for N members before failing formation for everyone.
  std::chrono::milliseconds formation_timeout{30'000};
  /// One connection's handshake (hello -> challenge -> join) must complete within this. On the
  /// root this bounds what a slow or hostile client can hold.
  std::chrono::milliseconds handshake_timeout{5'000};
  /// Member: one TCP connect attempt. Failed attempts are retried until formation_timeout.
  std::chrono::milliseconds connect_timeout{5'000};
  /// Member: the first pause between connect attempts; it doubles up to 1 s.
  std::chrono::milliseconds connect_retry_interval{50};
  /// Both sides send a heartbeat this often once a member has joined. The ROOT's values of
  /// heartbeat_interval and heartbeat_timeout are authoritative: members adopt them during the
  /// handshake, so a group cannot disagree on them.
  std::chrono::milliseconds heartbeat_interval{1'000};
  /// A peer heard nothing from for this long is reported silent. Must be >= 2 x the interval.
  std::chrono::milliseconds heartbeat_timeout{5'000};
  /// Default deadline of allgather() and barrier().
  std::chrono::milliseconds collective_timeout{30'000};
  /// Root only: the address to listen on. Empty: the unique id's host. "0.0.0.0" or "::" listen
  /// on every interface while members still connect to the id's host.
  std::string listen_address;
  /// Root only: handshakes in progress at once; further connections are closed at once. Bounds
  /// the memory and sockets that unauthenticated clients can hold.
  std::size_t max_pending_handshakes = 64;
};

/// One member of a formed group, as announced when it joined.
struct PeerInfo {
  std::string host;                   ///< the member's host name (JoinOptions::host_name)
  std::vector<std::uint8_t> payload;  ///< its opaque payload (e.g. a UCX worker address)
};

/// A member that left or failed, and why.
struct FailedPeer {
  int rank = kRendezvousRoot;  ///< its rank, or kRendezvousRoot for a standalone root
  Status reason;               ///< kPeerFailure: "rank 2 (host n2) left the group", ...
};

/// Called once per lost peer, on the bootstrap's I/O thread (see the threading contract above).
/// `reason` is kPeerFailure; its message names the rank and host and says what happened:
///  - "rank 2 (host n2) left the group" (clean close()),
///  - "rank 2 (host n2) left: its connection to the rendezvous root broke (...)" (process died),
///  - "rank 2 (host n2) is silent for 5.1 s (no heartbeat: ...)" (stopped, hung or partitioned),
///  - "rank 0 (host n0) / the rendezvous root at n0:29500 is unreachable: ..." (root lost; then
///    no further failures can be detected).
using PeerFailureFn = std::function<void(int rank, const Status& reason)>;

/// What a member announces when it joins.
struct JoinOptions {
  /// The rank this member wants, in [0, N), or kAnyRank. Requests are honoured; a rank already
  /// taken or out of range makes this join fail (kInvalidArgument), and the group keeps waiting.
  int rank = kAnyRank;
  /// The member's host name in the table and in messages. Empty: this machine's host name.
  std::string host_name;
  /// Opaque bytes every member receives in the table, at most kMaxBootstrapPayloadBytes.
  std::vector<std::uint8_t> payload;
  /// Optional; see PeerFailureFn. Set before joining so that no failure can be missed.
  PeerFailureFn on_peer_failure;
  /// Optional: a stop request while the group is still forming ends join() at once with
  /// kUnavailable ("group formation cancelled"); the member tells the root it gave up. A daemon
  /// shutting down uses it instead of waiting out formation_timeout. No effect once formed.
  std::stop_token cancel;
};

/// The rendezvous root: accepts and authenticates joiners, assigns ranks, distributes the table,
/// then watches every member's heartbeats and relays failures and collectives. Usually owned by
/// the rank-0 member (Bootstrap::join with a server); a daemon may run one on its own.
///
/// Robustness: every frame length is checked against a hard maximum before anything is
/// allocated, every read has a deadline, and at most max_pending_handshakes unauthenticated
/// connections are held. A client that sends garbage, lies about lengths, never completes the
/// handshake or has the wrong secret is dropped (and listed in rejections()); the root keeps
/// serving the others.
///
/// Thread-safe (see the contract above). Destroying it tells every member that the root shut
/// down (each reports the root as lost), then stops its thread.
class BootstrapServer {
 public:
  /// Binds and listens on id's host (or options.listen_address) and port (0: a free port), then
  /// serves a group of `nranks` members. Returns once listening; id() is then complete.
  /// kInvalidArgument for bad arguments or options; kUnavailable when the address can't be bound.
  static Result<std::unique_ptr<BootstrapServer>> start(const UniqueId& id, int nranks,
                                                        const BootstrapOptions& options = {});
  ~BootstrapServer();
  BootstrapServer(const BootstrapServer&) = delete;
  BootstrapServer& operator=(const BootstrapServer&) = delete;

  /// The complete id (the bound port filled in): the one to hand to the members.
  const UniqueId& id() const noexcept;
  int size() const noexcept;
  /// Members that have joined so far (authenticated and waiting); size() once formed.
  int joined() const noexcept;

  /// Waits until the group formed (OK), formation failed (its Status: kTimeout naming the
  /// missing ranks), or `timeout` passed (kTimeout saying the root is still waiting).
  Status wait_formed(std::chrono::milliseconds timeout) const;

  /// Recent rejected connections, newest last (at most 64), e.g. "127.0.0.1:41234: authentication
  /// failed: wrong group secret". For diagnostics and tests.
  std::vector<std::string> rejections() const;

  /// Members lost since formation, by rank.
  std::vector<FailedPeer> failed_peers() const;

 private:
  struct Impl;
  explicit BootstrapServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// One member of a formed group.
class Bootstrap {
 public:
  /// Joins the group of `id` and blocks until it has formed (OK: the table is complete and this
  /// member has its rank) or failed. Failures: kTimeout ("group formation timed out after 30 s:
  /// 3 of 4 ranks joined (missing: rank 2)", or "... could not reach the rendezvous root at
  /// h:p (last error: ...)"); kInvalidArgument ("authentication failed: wrong group secret", a
  /// rank conflict, bad options); kPeerFailure (the root failed during formation).
  static Result<std::unique_ptr<Bootstrap>> join(const UniqueId& id, JoinOptions join_options,
                                                 const BootstrapOptions& options = {});

  /// The same, for the process that runs the root: joins `server`'s group and owns the server,
  /// which is destroyed after this member closes. Members report this member's rank when the
  /// root is lost. The server's heartbeat settings apply (they are authoritative anyway).
  static Result<std::unique_ptr<Bootstrap>> join(std::unique_ptr<BootstrapServer> server,
                                                 JoinOptions join_options,
                                                 const BootstrapOptions& options = {});

  /// close(), then stops the I/O thread. Must not run on the I/O thread (inside a callback).
  ~Bootstrap();
  Bootstrap(const Bootstrap&) = delete;
  Bootstrap& operator=(const Bootstrap&) = delete;

  int rank() const noexcept;
  int size() const noexcept;
  /// The table, indexed by rank (this member included).
  const std::vector<PeerInfo>& peers() const noexcept;
  /// "rank 2 (host n2)", for messages.
  std::string peer_name(int rank) const;
  /// The rank whose process hosts the rendezvous root, or kRendezvousRoot if none does.
  int root_rank() const noexcept;

  /// Every member contributes `data` (at most kMaxAllgatherBytes; sizes may differ) and gets all
  /// contributions, indexed by rank. The k-th collective call (allgather or barrier) on each
  /// member forms the k-th collective of the group: call them in the same order on every rank.
  /// Blocks up to `timeout` (default: options.collective_timeout) -> kTimeout. After any member
  /// has left or failed, the group's collectives fail with kPeerFailure naming it. Mismatched
  /// calls (one rank barrier, another allgather) fail on every rank with kInvalidArgument.
  Result<std::vector<std::vector<std::uint8_t>>> allgather(
      std::span<const std::uint8_t> data, std::optional<std::chrono::milliseconds> timeout = {});

  /// Returns once every member has called barrier() (same ordering rules as allgather()).
  Status barrier(std::optional<std::chrono::milliseconds> timeout = {});

  /// Peers lost so far (left, died, silent; the root when unreachable), by rank.
  std::vector<FailedPeer> failed_peers() const;

  /// Leaves the group cleanly: the root announces "rank r (host h) left the group" to the others,
  /// pending collectives fail, heartbeats stop. Idempotent. Waits at most ~1 s for the goodbye to
  /// be written. If this member owns the server, the server shuts down afterwards.
  Status close();

  /// Test hook: while paused, this member sends no heartbeats but keeps its connection open and
  /// keeps reading, as a hung process would look to the root.
  void pause_heartbeats_for_testing(bool paused);

 private:
  struct Impl;
  explicit Bootstrap(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::transport
