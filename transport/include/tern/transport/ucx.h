// The UCX (UCP) implementation of tern::transport::Transport.
//
// Two steps, because the ranks must swap addresses in between (the TCP bootstrap does that; this
// library never opens a socket of its own):
//
//   auto local = UcxLocalWorker::create(options);          // this rank's UCX context + worker
//   if (!local) return local.status();
//   std::vector<std::byte> mine = local->address();        // publish it through the bootstrap,
//   std::vector<std::vector<std::byte>> all = allgather(mine);   // get every rank's back
//   auto transport = UcxTransport::create(std::move(*local), rank, std::move(all), names);
//
// UcxTransport then holds one UCP endpoint to every other rank (created eagerly, error handling
// mode PEER) and implements the Transport contract (transport.h): one progress thread, callbacks
// only from progress(), every operation completes exactly once, fail_peer(), thread-safe wake().
//
// Tag layout. UCX matches receives on the 64-bit tag alone, not on the sender, so the sender's
// rank is part of the UCX tag: bits 63..48 hold the sender's rank, bits 47..0 the engine's Tag,
// and receives match all 64 bits. Engine tags must therefore fit in 48 bits (kUcxMaxTag) and
// groups hold at most kUcxMaxRanks ranks; larger values are rejected with kInvalidArgument.
//
// Failures. A peer that dies is reported by UCX through the endpoint's error callback (TCP: the
// socket closes, ~ms; shared memory: the keepalive notices the process is gone, ~1 keepalive
// interval). The transport then force-closes the endpoint (so UCX releases every request that
// uses it), cancels the receives posted for that peer (UCX would never complete them) and
// completes every pending operation with kPeerFailure "rank r (host h) failed: <UCX reason>";
// later operations with that peer complete the same way at the next progress(). fail_peer() does
// the same on the engine's request. A peer that goes silent without closing its connection is
// not noticed by UCX for many minutes: the engine must enforce deadlines and call fail_peer().
//
// Memory. Capabilities::cuda_memory is true only when the installed UCX reports CUDA among its
// memory types (ucp_context_query). Debian's UCX 1.13 has no CUDA support: MemoryKind::kCuda
// then fails with kUnavailable and the caller must stage GPU data through host memory.
//
// Worker addresses are trusted input (UCX does not validate them): exchange them only over the
// authenticated bootstrap.
//
// See docs/transport-ucx.md for what UCX selects here and on an InfiniBand cluster.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tern/common/status.h"
#include "tern/transport/transport.h"

namespace tern::transport {

namespace ucx {
class LocalState;     // context + worker (private)
class TransportCore;  // the implementation behind UcxTransport (private)
}  // namespace ucx

/// Largest engine Tag UcxTransport accepts (48 bits; the top 16 bits carry the sender's rank).
inline constexpr Tag kUcxMaxTag = (Tag{1} << 48) - 1;
/// Largest group UcxTransport supports (the sender's rank must fit in 16 bits).
inline constexpr int kUcxMaxRanks = 1 << 16;

/// One UCX configuration setting: `name` without the "UCX_" prefix ("TLS", "KEEPALIVE_INTERVAL"),
/// `value` as UCX parses it ("tcp,self", "500ms").
struct UcxSetting {
  std::string name;
  std::string value;
};

/// A default tern applies to UCX unless the user chose a value (see ucx_env_defaults()).
struct UcxEnvDefault {
  std::string_view name;   ///< without the "UCX_" prefix
  std::string_view value;
  std::string_view why;    ///< one line: what goes wrong without it
};

/// The defaults tern applies on top of UCX's own, each only when neither the environment
/// (UCX_<name>) nor UcxOptions::config sets it:
///  - MM_ERROR_HANDLING=y: with error handling mode PEER (which tern needs to survive a dead
///    peer), UCX 1.13 silently drops the shared-memory transports and runs same-host traffic over
///    TCP loopback (~8x less bandwidth). With it, shared memory stays and a dead local peer is found
///    by the keepalive. Applied only when the transport list (UCX_TLS) can include shared memory.
///  - KEEPALIVE_INTERVAL=1s: UCX's default is 20 s, the only failure detection shared memory has.
///    1 s finds a dead same-host peer in 1-2 s; the cost is one tiny check per endpoint per second.
std::span<const UcxEnvDefault> ucx_env_defaults();

/// How UcxLocalWorker::create sets up UCX.
struct UcxOptions {
  /// UCX settings applied with ucp_config_modify, after the environment: these win over UCX_*
  /// variables. Per context, so ranks run as threads of one process may differ (unlike setenv).
  /// Example: {{"TLS", "tcp,self"}} forces TCP.
  std::vector<UcxSetting> config;
  /// Apply ucx_env_defaults() where nothing else set the value.
  bool apply_env_defaults = true;
  /// Hint for UCX's transport choice on large clusters (e.g. RC vs DC on InfiniBand): the number of
  /// endpoints this worker will have (ranks - 1). 0: UCX's default.
  std::size_t estimated_endpoints = 0;
  /// Longest time the destructor spends closing endpoints gracefully (flushing) before it forces
  /// them closed.
  std::chrono::milliseconds close_timeout{2000};
  /// progress() sleeps in slices of at most this long, progressing UCX between them, because UCX
  /// runs its keepalive (failure detection) only from inside ucp_worker_progress.
  std::chrono::milliseconds poll_slice{100};
};

/// This rank's UCX context and worker (one per progress thread): create it, publish address(),
/// then hand it to UcxTransport::create. Move-only; a moved-from object may only be destroyed or
/// assigned to. Not thread-safe.
class UcxLocalWorker {
 public:
  /// Reads the UCX configuration (environment, then defaults, then options.config), initializes a
  /// context with tagged messaging and wake-up support and creates a single-threaded worker.
  /// kUnavailable when UCX cannot initialize; kInvalidArgument for a setting UCX rejects.
  static Result<UcxLocalWorker> create(const UcxOptions& options = {});

  UcxLocalWorker(UcxLocalWorker&&) noexcept;
  UcxLocalWorker& operator=(UcxLocalWorker&&) noexcept;
  ~UcxLocalWorker();

  /// The worker's address: an opaque blob for the other ranks' UcxTransport::create. It holds
  /// host addresses and shared-memory ids; exchange it only over an authenticated channel.
  const std::vector<std::byte>& address() const;
  /// Whether the installed UCX can move CUDA device memory (it reports UCS_MEMORY_TYPE_CUDA).
  bool cuda_memory() const;
  /// "1.13.1": the UCX library loaded at run time.
  std::string ucx_version() const;
  /// The settings this worker applied on top of the environment ("NAME=value", defaults first,
  /// then options.config), for diagnostics.
  std::vector<std::string> applied_settings() const;

 private:
  friend class UcxTransport;
  explicit UcxLocalWorker(std::unique_ptr<ucx::LocalState> state);
  std::unique_ptr<ucx::LocalState> state_;
};

/// What UCX selected for the endpoint to one peer.
struct UcxEndpointInfo {
  int peer = -1;
  bool failed = false;                  ///< the peer failed; the endpoint is closed
  std::vector<std::string> transports;  ///< "transport/device" of each lane: "tcp/lo", "sysv/memory"
  std::vector<std::string> lanes;       ///< each lane with its roles: "sysv/memory (am, am_bw, keepalive)"
};

/// Transport over UCX tagged messaging. Single progress thread (see transport.h); wake() is the only
/// thread-safe method.
class UcxTransport final : public Transport {
 public:
  /// Connects `local` to every other rank. `addresses[r]` is rank r's UcxLocalWorker::address()
  /// (the entry for `rank` itself is not used); `peer_names[r]` names rank r in error messages
  /// ("rank 2 (host n2)"); empty: "rank r". kInvalidArgument for inconsistent sizes or a group
  /// larger than kUcxMaxRanks; kUnavailable when UCX cannot reach a peer's address.
  /// Creating endpoints exchanges nothing with the peers: it does not wait for them.
  static Result<std::unique_ptr<UcxTransport>> create(UcxLocalWorker local, int rank,
                                                      std::vector<std::vector<std::byte>> addresses,
                                                      std::vector<std::string> peer_names = {});

  /// Completes every pending operation (callbacks run here, with kUnavailable "transport shut
  /// down" unless UCX finishes them meanwhile), closes the endpoints (flushing those without
  /// sends in flight, for up to UcxOptions::close_timeout: a flush needs the peer to be
  /// progressing too; forcing the others) and destroys the worker, then the context. send() and
  /// recv() called from those callbacks return kUnavailable. No wake() may race with it.
  ~UcxTransport() override;

  int rank() const override;
  int size() const override;
  std::string peer_name(int peer) const override;
  /// cuda_memory from UCX's memory types; description "ucx 1.13.1 [sysv/memory, tcp/eth0]": the
  /// union of the transports of the endpoints to live peers.
  Capabilities capabilities() const override;

  /// Also kInvalidArgument for a tag above kUcxMaxTag or a null buffer with a non-zero length;
  /// kUnavailable for MemoryKind::kCuda when UCX lacks CUDA support.
  Status send(int peer, Tag tag, const void* data, std::size_t length, MemoryKind memory,
              CompletionFn done) override;
  /// As send(). A message longer than `capacity` completes with kCorruptData naming the peer.
  Status recv(int peer, Tag tag, void* data, std::size_t capacity, MemoryKind memory,
              CompletionFn done) override;
  /// Progresses UCX until it is idle, then runs ready callbacks; when none ran, sleeps on the
  /// worker's event fd (armed) and wake()'s eventfd for up to `max_wait`.
  Status progress(std::chrono::milliseconds max_wait) override;
  /// Force-closes the endpoint (so UCX lets go of every request using it: the buffers of the
  /// completed operations are free for the caller once their callbacks run), cancels the posted
  /// receives and completes everything pending with `peer` with `reason` at the next progress().
  void fail_peer(int peer, const Status& reason) override;
  /// Thread-safe and async-signal-safe (writes an eventfd).
  void wake() override;

  /// Per peer: the transports UCX selected (from ucp_ep_print_info), for diagnostics.
  std::vector<UcxEndpointInfo> endpoint_info() const;

 private:
  explicit UcxTransport(std::unique_ptr<ucx::TransportCore> core);
  std::unique_ptr<ucx::TransportCore> core_;
};

}  // namespace tern::transport
