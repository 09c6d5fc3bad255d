// UCX measurement engine: UCP tagged messages between two processes, one context + worker each,
// the way ucx_perftest's tag_bw / tag_lat drive UCX (a window of non-blocking sends then a sync;
// ping-pong for latency), so the numbers compare.
//
// Wire protocol (UCX tags, all in one endpoint pair):
//   DATA  the measured messages (bw) / ping and pong (lat)
//   END   after the last DATA of a round: bw carries the sender's message count (8 bytes), lat none
//   ACK   bw: the receiver got every message of the round (the sender's clock stops here)
// A round is either the warm-up or one measured size. Rounds never overlap: a bw sender starts the
// next round only after the ACK, which the receiver sends after it has cancelled its spare receives.
//
// Threading: single-threaded (UCS_THREAD_MODE_SINGLE); every call progresses the worker itself.
// Every wait checks the deadline (kTimeout: the peer stopped answering). Endpoints use UCX's
// default error mode (none), as ucx_perftest does: a peer that dies mid-round is noticed by the
// deadline or by the control connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "perf/control.h"
#include "perf/options.h"
#include "perf/stats.h"
#include "tern/common/status.h"

namespace tern::ibbench {

/// One bandwidth round as one side runs it.
struct BwRound {
  std::size_t bytes = 0;
  std::uint64_t iterations = 0;  ///< messages to send; 0: send for `duration_s`
  double duration_s = 0;
  unsigned window = kDefaultWindow;
  bool send = false;     ///< this side sends (uni: the client; -b: both)
  bool receive = false;  ///< this side receives (uni: the server; -b: both)
};

class UcxEngine {
 public:
  /// A UCX context (tag matching) and a single-threaded worker, configured from the UCX_*
  /// environment (UCX_TLS picks transports). With MemoryKind::kCuda: kUnavailable unless UCX
  /// reports CUDA among its memory types.
  static Result<std::unique_ptr<UcxEngine>> create(MemoryKind memory);
  ~UcxEngine();
  UcxEngine(const UcxEngine&) = delete;
  UcxEngine& operator=(const UcxEngine&) = delete;

  /// The worker's address, for the peer's connect().
  const std::vector<std::byte>& address() const;
  /// "1.13.1"
  static std::string ucx_version();
  /// Creates the endpoint to the peer's worker (no exchange with the peer).
  Status connect(const std::vector<std::byte>& peer_address);
  /// "tcp/lo", "sysv/memory": the transports of the endpoint's lanes (after connect()).
  std::vector<std::string> transports() const;

  /// Runs one bw round; each buffer holds at least round.bytes (the data is not checked). Sends
  /// and receives use separate buffers, as ucx_perftest's do.
  Result<BwSideResult> bw(const BwRound& round, void* send_buffer, void* recv_buffer, Deadline deadline);
  /// Latency initiator: `iterations` ping-pongs (or for `duration_s`), one-way times in µs.
  Result<std::vector<double>> lat_initiator(std::size_t bytes, std::uint64_t iterations, double duration_s,
                                            void* send_buffer, void* recv_buffer, Deadline deadline);
  /// Latency responder: answers every ping until the initiator's END.
  Status lat_responder(std::size_t bytes, void* send_buffer, void* recv_buffer, Deadline deadline);

  /// Flushes and closes the endpoint (both sides call it; bounded by the deadline).
  Status close(Deadline deadline);

  struct State;

 private:
  explicit UcxEngine(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tern::ibbench
