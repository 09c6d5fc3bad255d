// One group as ternd sees it: the local trainers that joined it, the inter-node communicator, and
// the worker thread that runs its allreduces (docs/daemon.md, "Groups").
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "daemon_impl.h"
#include "cuda_memory.h"
#include "gpu_local_reduce.h"
#include "shared_memory.h"
#include "tern/daemon/ring.h"
#include "tern/transport/bootstrap.h"
#include "tern/transport/collective.h"
#include "tern/transport/cuda_tensor.h"

namespace tern::transport {
class Group;
}

namespace tern::daemon {

/// One submitted allreduce of one local trainer, validated.
struct OpRequest {
  std::weak_ptr<Session> session;
  std::uint64_t user_data = 0;
  ring::Submission args{};
  std::shared_ptr<SharedMapping> memory;  // keeps the arena mapped while the op runs
  std::uint8_t* data = nullptr;           // inside memory (range checked), or the group's staging
  std::shared_ptr<CudaMapping> cuda;      // a GPU buffer (see execute_on_gpu)
  std::size_t cuda_offset = 0;
  std::chrono::steady_clock::time_point deadline;
};

struct GroupParams {
  std::uint32_t uid = 0;  // owner: every local member has this uid
  int nranks = 0, local_size = 0, node_rank = 0, nnodes = 0;
  std::uint64_t seed = 0;  // 0: derived from the id
  std::chrono::steady_clock::time_point formation_deadline;
};

class GroupState : public std::enable_shared_from_this<GroupState> {
 public:
  GroupState(Daemon::Impl& daemon, transport::UniqueId id, GroupParams params);
  ~GroupState();  // joins the worker

  const GroupParams& params() const noexcept { return params_; }
  std::string name() const;  ///< short, secret-free: "3f2a9c01"

  /// io thread. Checks the rank against this node's slots and the other members' parameters.
  Status add_member(const std::shared_ptr<Session>& session, std::uint32_t handle, int rank, int nranks,
                    int local_size, std::uint64_t seed, std::uint32_t uid);
  /// Queues `op` for local rank `rank`; a failed group completes it at once with its reason.
  void submit(int rank, OpRequest op);
  /// The member of `rank` left (its reason names it); the group fails everywhere.
  void member_left(int rank, const std::string& reason);
  /// Fails pending and later operations with `reason` (e.g. shutdown) and ends the worker promptly.
  void fail(const Status& reason);
  bool all_left() const;
  bool worker_done() const noexcept { return worker_done_.load(); }
  nlohmann::json status() const;

 private:
  struct Member {
    std::weak_ptr<Session> session;
    std::uint32_t handle = 0;
    std::uint32_t pid = 0;
    bool present = false;
    bool join_replied = false;
    std::deque<OpRequest> queue;
  };
  struct CodecStats {
    std::uint64_t ops = 0, bytes_out = 0, bytes_in = 0;
  };

  void worker_main();
  Status form();
  void reply_join(const Status& status);
  void run_operations();
  /// Takes the next operation if every local trainer submitted it and none is running.
  bool pop_ready_locked(std::vector<OpRequest>* ops, std::uint64_t* k);
  /// Executes popped operation k (any thread; the caller holds no lock) and completes it.
  void run_popped(std::vector<OpRequest>& ops, std::uint64_t k);
  /// Runs operation `k` whose requests (local-rank order) were popped from the queues.
  Status execute(std::vector<OpRequest>& ops, std::uint64_t k);
  /// execute() for one local trainer with a GPU buffer, when CUDA is built: the engine runs the
  /// codecs on the GPU in place (cuda_tensor.h); only packed chunks and this node's shard cross
  /// to the host.
  Status execute_on_gpu(std::vector<OpRequest>& ops, std::uint64_t k);
  /// execute() for several local trainers whose buffers are all on GPUs, when CUDA is built: the
  /// local sum, mean and narrowing on local rank 0's GPU (gpu_local_reduce.h), the engine on the
  /// sum in place. Groups that mix host and GPU buffers on a node are staged through the host.
  Status execute_local_sum_on_gpu(std::vector<OpRequest>& ops, std::uint64_t k);
  /// A GPU tensor over `op`'s buffer, with the group's scratch (created on first use).
  Result<std::unique_ptr<collective::Tensor>> gpu_tensor_of(const OpRequest& op, kernels::DType dtype);
  /// This node could not provide its input (`local`: a GPU or staging error): joins operation k
  /// with a failing tensor, so that it fails on every node with that reason, and returns it.
  Status fail_in_engine(std::vector<OpRequest>& ops, std::uint64_t k, const Status& local);
  struct OpTimes {
    std::chrono::steady_clock::time_point start, local_sum_done, engine_done;
  };
  /// The end of execute_on_gpu and execute_local_sum_on_gpu: the outcome `s` with context, or the
  /// success recorded.
  Status finish_on_gpu(const std::vector<OpRequest>& ops, std::uint64_t k, const Status& s,
                       const collective::AllreduceOptions& options, const collective::AllreduceStats& stats,
                       OpTimes times);
  static collective::AllreduceOptions options_for(const std::vector<OpRequest>& ops);
  /// The debug line, the per-codec counters, and the trainers' completions of a successful operation.
  void record_success(const std::vector<OpRequest>& ops, std::uint64_t k, const collective::AllreduceOptions& options,
                      const collective::AllreduceStats& stats, const OpTimes& times);
  /// Fails popped operation `ops` and the group (the caller holds no lock).
  void fail_popped(const std::vector<OpRequest>& ops, const Status& s);
  /// Whether operation `ops` may run overlapped with its neighbours (Communicator::allreduce_overlapped).
  bool overlappable(const std::vector<OpRequest>& ops) const;
  /// Runs `ops` (number k) and, overlapped with it, the overlappable operations queued meanwhile.
  void run_overlapped(std::vector<OpRequest>& ops, std::uint64_t k);
  std::optional<collective::OverlappedAllreduce> overlapped(std::vector<OpRequest> ops, std::uint64_t k);
  Status check_agreement(const std::vector<OpRequest>& ops, std::uint64_t k) const;
  void set_failed_locked(const Status& reason);  // first reason wins; fails queued ops
  void record_error_locked(const std::string& message);
  static void complete(const OpRequest& op, const Status& status);

  Daemon::Impl& daemon_;
  const transport::UniqueId id_;
  const GroupParams params_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Member> members_;  // by local rank
  int joined_ = 0;
  Status failed_;
  bool formed_ = false;
  bool executing_ = false;    // an operation is running (worker or inline on the io thread)
  std::uint64_t next_op_ = 1;  // the number of the next operation (communicator's numbering)
  collective::Communicator* communicator_ = nullptr;  // set by the worker while it exists
  std::uint64_t ops_done_ = 0, ops_failed_ = 0;
  std::uint64_t ops_overlapped_ = 0;  // started while the previous one still ran (allreduce_overlapped)
  std::uint64_t ops_gpu_in_place_ = 0;  // GPU buffers never staged whole through the host (execute_*on_gpu)
  std::map<std::string, CodecStats> codec_stats_;  // "terngrad/terngrad"
  std::deque<std::string> errors_;
  std::atomic<bool> worker_done_{false};
  std::stop_source formation_stop_;  // requested when the group fails: ends a formation in progress
  std::vector<float> acc_;  // used by whoever executes (executing_)
  std::unique_ptr<HostStaging[]> staging_;  // per local rank, for GPU buffers; as acc_
  std::unique_ptr<collective::CudaScratch> cuda_scratch_;  // execute_on_gpu's, kept; as acc_
  std::unique_ptr<GpuLocalReduce> gpu_local_;              // execute_local_sum_on_gpu's; as acc_
  std::chrono::steady_clock::time_point last_done_;  // likewise: for the debug timing line
  std::thread worker_;
};

}  // namespace tern::daemon
