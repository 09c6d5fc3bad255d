// Internal: one allreduce in flight. A state machine driven by Communicator::allreduce()'s thread:
// transport callbacks only record arrivals; encoding, reduction and decoding run in the loop,
// one chunk at a time between progress() calls, so the network stays busy while the CPU works.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "protocol.h"
#include "tern/transport/collective.h"
#include "tern/transport/tensor.h"

namespace tern::collective {

class AllreduceOp {
 public:
  /// `tensor` must outlive the operation, unless the operation owns it (`owned`, the same object).
  AllreduceOp(Communicator& comm, Tensor& tensor, std::unique_ptr<Tensor> owned, const AllreduceOptions& options,
              Communicator::Residuals* residuals, std::uint64_t op);
  AllreduceOp(const AllreduceOp&) = delete;
  AllreduceOp& operator=(const AllreduceOp&) = delete;

  /// Runs to completion or failure. Returns only when every transport operation it posted has
  /// completed (so no callback can touch this object afterwards). Equivalent to start(), step()
  /// with progress() between steps until kDone, then finish().
  Status run();

  // The same in pieces, for running several operations on one thread (Communicator::
  // allreduce_overlapped): the caller drives the transport's progress() between steps.
  enum class Step { kWorked, kIdle, kDone };
  void start();                                   ///< posts the descriptor exchange
  Step step();                                    ///< one round of CPU work; kDone: complete or failed
  std::chrono::milliseconds idle_wait() const;    ///< how long an idle caller may wait for the transport
  void abort_with(const Status& status);          ///< fails the operation (e.g. progress() failed)
  /// After kDone: on failure breaks the group, tells the peers, and waits for every transport
  /// operation of this one to complete. Returns the operation's outcome.
  Status finish();
  // finish() of a failed operation in two halves, for failing several at once: every one must
  // announce (its abort reaches the peers) before any drains (which fails the peers locally).
  const Status& status() const { return error_; }
  void announce_failure();
  void drain_after_failure() {
    drain();
    drained_ = true;
  }

  void mark_overlapped() { stats_.started_overlapped = true; }
  std::uint64_t number() const { return op_; }
  std::uint64_t tensor_key() const { return options_.tensor_key; }
  const std::uint8_t* buffer_begin() const { return static_cast<const std::uint8_t*>(tensor_->address()); }
  const std::uint8_t* buffer_end() const { return buffer_begin() + count_ * elem_bytes_; }
  const AllreduceStats& stats() const { return stats_; }

 private:
  struct ScatterChunk {                             // one pipeline chunk of this rank's shard
    std::vector<std::vector<std::uint8_t>> from;   // per source rank
    std::vector<char> got;                         // per source rank: arrived
    int arrived = 0;
  };
  struct GatherChunk {  // one pipeline chunk of another rank's shard
    std::vector<std::uint8_t> bytes;
    bool arrived = false;
  };
  struct SendBuffer {
    std::vector<std::uint8_t> bytes;
    int pending = 0;
  };

  bool complete() const;
  void fail(const Status& status);
  Status check_deadline_and_failures();
  bool waiting_for(int peer) const;  // does this operation still need data from `peer`?
  void post_descriptors();
  void post_receives();
  bool encode_next_scatter();
  bool reduce_next_chunk();
  bool decode_arrived_gather();
  void send_to(int peer, Phase phase, std::uint32_t chunk, SendBuffer* buffer);
  void recv_from(int peer, Phase phase, std::uint32_t chunk, std::vector<std::uint8_t>& into,
                 std::function<void()> on_arrival);
  Status check_chunk(const std::vector<std::uint8_t>& bytes, kernels::Codec codec, std::size_t count, int from) const;
  kernels::EncodeOptions encode_options(kernels::Codec codec, Phase phase, std::size_t element_offset) const;
  std::string describe() const;
  void drain();

  Communicator& comm_;
  transport::Transport& transport_;
  std::unique_ptr<Tensor> owned_tensor_;  // declared first: tensor_ may point into it
  Tensor* tensor_;
  std::size_t count_;
  AllreduceOptions options_;
  Communicator::Residuals* residuals_;
  std::uint64_t op_;
  int me_, ranks_;
  std::size_t elem_bytes_;
  Partition partition_;
  std::chrono::steady_clock::time_point start_, deadline_;
  AllreduceStats stats_;
  Status error_;
  int in_flight_ = 0;  // posted transport operations whose callback has not run
  bool drained_ = false;  // a failure was announced and drained (drain_after_failure)

  OpDescriptor descriptor_;
  std::vector<std::uint8_t> descriptor_bytes_;
  std::vector<std::vector<std::uint8_t>> peer_descriptors_;
  std::vector<char> descriptor_got_;
  int descriptors_ok_ = 0;

  // Reduce-scatter, sending side: (chunk index, peer offset) in round-robin order.
  std::uint32_t next_scatter_chunk_ = 0;
  int next_scatter_peer_ = 1;
  int scatter_sends_in_flight_ = 0;
  std::deque<SendBuffer> scatter_sends_;  // deque: stable addresses while callbacks hold them

  // Reduce-scatter, owning side, and the allgather sends of the reduced chunks.
  std::vector<ScatterChunk> scatter_;
  std::uint32_t scatter_posted_ = 0, reduced_ = 0;
  std::deque<SendBuffer> gather_sends_;
  int gather_sends_in_flight_ = 0;

  // Allgather, receiving side: per shard owner.
  std::vector<std::vector<GatherChunk>> gather_;
  std::vector<std::uint32_t> gather_posted_, gather_outstanding_, gather_done_;
  std::deque<std::pair<int, std::uint32_t>> gather_arrived_;
};

}  // namespace tern::collective
