// The collective engine in library mode (like NCCL's communicator): a compressed allreduce over
// any Transport, as reduce-scatter + allgather, pipelined in chunks with bounded memory.
//
// Algorithm (N ranks): the tensor is split into N shards, shard j owned by rank j, each shard into
// pipeline chunks. Reduce-scatter: every rank encodes its own values of shard j with the scatter
// codec and sends them straight to rank j; rank j sums the N−1 decoded contributions and its own
// (in fp32, in rank order). Allgather: rank j re-encodes the reduced shard with the gather codec,
// sends the same bytes to every rank and decodes them itself. Every rank therefore decodes the
// same bytes for every shard: the results are bit-identical on all ranks. Each rank sends and
// receives (N−1)/N of the compressed tensor per direction: 2(N−1)/N in all (bandwidth-optimal).
//
// Failure semantics: every allreduce has a deadline. A dead, silent or misbehaving peer, a
// mismatch between ranks' arguments, bad input on any rank (non-finite values) or corrupt data
// fails the operation on every rank with a message naming the rank and the values, and leaves
// the communicator broken: later calls fail at once with the same reason; destroy it and form the
// group again. (A rank that crashes in the middle of the allgather may leave some survivors with
// a completed result and others with an error, as in NCCL; the next operation fails everywhere.)
//
// Thread safety: allreduce() is called by one thread at a time per communicator (it drives the
// transport itself). notify_peer_failure() may be called from any thread (e.g. a heartbeat
// monitor) and makes a running or later allreduce fail promptly.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tern/common/status.h"
#include "tern/kernels/codec.h"
#include "tern/transport/tensor.h"
#include "tern/transport/transport.h"

namespace tern::collective {

class BufferPool;  // internal: recycled chunk buffers

enum class ReduceOp : std::uint8_t { kSum = 0, kMean = 1 };

struct AllreduceOptions {
  ReduceOp op = ReduceOp::kSum;
  kernels::DType dtype = kernels::DType::kF32;            ///< element type of the buffer
  kernels::Codec scatter_codec = kernels::Codec::kTernGrad;  ///< reduce-scatter: each worker's values
  kernels::Codec gather_codec = kernels::Codec::kTernGrad;   ///< allgather: the reduced shard, re-encoded
  std::uint32_t block_size = kernels::kDefaultBlockSize;
  bool clip = false;  ///< terngrad clipping (both directions that use terngrad)
  /// Error-feedback codecs keep residuals per tensor key across calls (worker residual for the
  /// scatter direction, the owner's residual for the gather direction). A key must keep its
  /// element count.
  std::uint64_t tensor_key = 0;
  std::chrono::milliseconds timeout{30000};
};

/// How long a running allreduce keeps waiting for data already sent by a peer reported failed.
inline constexpr std::chrono::milliseconds kPeerFailureGrace{2000};

struct CommunicatorOptions {
  std::uint64_t seed = 0;                      ///< shared by the group: Philox key of terngrad's rounding
  std::uint32_t pipeline_chunk_elements = 1u << 17;  ///< elements per pipeline chunk (rounded to blocks)
  std::uint32_t pipeline_window = 4;           ///< chunks in flight per peer and direction
  std::uint64_t group_id = 0;                  ///< checked in every operation's descriptor
};

/// What one allreduce moved and spent.
struct AllreduceStats {
  std::uint64_t bytes_sent = 0;       ///< payload bytes this rank sent (descriptors excluded)
  std::uint64_t bytes_received = 0;
  double encode_seconds = 0;
  double decode_seconds = 0;
  double total_seconds = 0;
  bool started_overlapped = false;  ///< allreduce_overlapped(): it started while another was running
};

class AllreduceOp;

/// One operation of Communicator::allreduce_overlapped().
struct OverlappedAllreduce {
  void* buffer = nullptr;  ///< in place, as allreduce()
  std::size_t count = 0;
  AllreduceOptions options;
  /// Called on the calling thread once the operation completed or failed (stats: this operation's).
  std::function<void(const Status&, const AllreduceStats&)> done;
};

/// At most this many operations of one allreduce_overlapped() call run at once.
inline constexpr std::size_t kMaxOverlappedAllreduces = 2;

class Communicator {
 public:
  /// Takes ownership of a connected transport. kInvalidArgument for bad options.
  static Result<std::unique_ptr<Communicator>> create(std::unique_ptr<transport::Transport> transport,
                                                      const CommunicatorOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  const transport::Transport& transport() const { return *transport_; }
  const CommunicatorOptions& options() const { return options_; }
  /// Sequence number the next allreduce will have (operations are numbered from 1; it feeds the
  /// rounding streams, see reference_allreduce()).
  std::uint64_t next_operation() const { return next_op_; }

  /// In-place allreduce of `count` elements of `options.dtype` at `buffer`. Blocks until done,
  /// failed, or past `options.timeout`. On error the buffer holds unspecified values.
  Status allreduce(void* buffer, std::size_t count, const AllreduceOptions& options,
                   AllreduceStats* stats = nullptr);

  /// The same on a tensor in any memory the Tensor interface reaches (tensor.h; e.g. GPU memory
  /// through cuda_tensor.h). `tensor.dtype()` must equal `options.dtype`. Ranks may mix kinds of
  /// memory: the bits are the same.
  Status allreduce(Tensor& tensor, const AllreduceOptions& options, AllreduceStats* stats = nullptr);

  /// Runs `first`, and the operations `next()` hands out while earlier ones still run, with up to
  /// kMaxOverlappedAllreduces in flight at once: a small operation submitted behind a large one
  /// moves its data while the large one's tail drains, instead of after it. Operations are
  /// numbered in the order they are handed out, exactly as consecutive allreduce() calls would be,
  /// and produce the same bits; peers may run them overlapped or one at a time. An operation
  /// whose tensor key equals, or whose memory overlaps, a running one's waits for it (and so do
  /// the ones handed out after it). `next()` is called on this thread whenever fewer than the
  /// maximum run and none waits; it returns nullopt when it has nothing. Returns when every
  /// operation handed out has completed and `next()` has nothing; each one's `done` has run.
  /// Failures are those of allreduce(): a failed operation breaks the group, so the others fail too.
  void allreduce_overlapped(OverlappedAllreduce first,
                            const std::function<std::optional<OverlappedAllreduce>()>& next);

  /// Thread-safe. Interrupts a transport wait of allreduce()/allreduce_overlapped() (e.g. so that
  /// the latter calls next() for an operation that was just submitted).
  void wake();

  /// Thread-safe. Records that `peer` failed or left (e.g. missed heartbeats, or its connection to
  /// the rendezvous broke). A running allreduce fails with `reason` (and aborts on the others) if
  /// it still needs data from that peer; one that already has everything from it completes (a
  /// peer that finished its part and exited is not an error for it; data it sent just before
  /// leaving gets kPeerFailureGrace to arrive). Every later call fails.
  void notify_peer_failure(int peer, const Status& reason);

  /// The reason this communicator is broken, or OK.
  Status broken() const;
  /// Whether operation `op` must fail: the group broke at or before it (an abort names the
  /// operation it happened in; earlier operations still complete with the data they have).
  Status broken_for(std::uint64_t op) const;

 private:
  friend class AllreduceOp;
  struct Residuals {
    std::size_t count = 0;
    std::vector<float> worker;  // per element of the tensor
    std::vector<float> owner;   // per element of this rank's shard
  };
  struct AbortInbox;

  Communicator(std::unique_ptr<transport::Transport> transport, const CommunicatorOptions& options);
  void post_abort_receive(int peer);
  void break_group(const Status& reason, std::uint64_t from_op = 0);
  /// Why `peer` was reported failed (notify_peer_failure), or OK; `since` gets the report's time.
  Status peer_failure(int peer, std::chrono::steady_clock::time_point* since = nullptr) const;
  void send_abort(const Status& reason, std::uint64_t op);
  /// Validates, numbers and builds the next operation (an argument error fails the group, as
  /// every other rank is about to wait for this one).
  /// The operation runs on `tensor`, or on `owned` when `tensor` is null (then it keeps it).
  Result<std::unique_ptr<AllreduceOp>> make_op(Tensor* tensor, std::unique_ptr<Tensor> owned,
                                               const AllreduceOptions& options);
  Status run_one(Result<std::unique_ptr<AllreduceOp>> made, AllreduceStats* stats);
  Result<Residuals*> residuals_for(const AllreduceOptions& options, std::size_t count, std::size_t shard_count);

  CommunicatorOptions options_;
  int rank_ = 0, size_ = 0;  // cached: the transport's callbacks can run while it is being destroyed
  std::atomic<std::uint64_t> next_op_{1};  // read by notify_peer_failure() from other threads
  std::map<std::uint64_t, Residuals> residuals_;
  std::unique_ptr<BufferPool> buffers_;  // chunk buffers reused across chunks and operations
  std::vector<float> accumulator_;       // one pipeline chunk's fp32 sum, reused likewise
  std::vector<std::unique_ptr<AbortInbox>> abort_inboxes_;  // outlive the transport (declared before it)
  std::string abort_message_;                                // the abort this rank sent, while in flight
  mutable std::mutex broken_mutex_;
  Status broken_;
  std::uint64_t broken_from_op_ = 0;  // operations >= this fail (0: all)
  std::vector<Status> peer_failures_;  // guarded by broken_mutex_; see notify_peer_failure()
  std::vector<std::chrono::steady_clock::time_point> peer_failure_times_;  // guarded by broken_mutex_
  std::unique_ptr<transport::Transport> transport_;
};

}  // namespace tern::collective
