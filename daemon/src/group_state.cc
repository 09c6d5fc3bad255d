#include "group_state.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "session.h"
#include "tern/daemon/hierarchical.h"
#include "tern/transport/group.h"
#include "tern/transport/loopback.h"

namespace tern::daemon {

using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxGroupErrors = 16;
constexpr std::size_t kInlineBytes = 64 << 10;  // single-node operations up to this size run inline

std::uint64_t secret_word(const transport::UniqueId& id, std::size_t word) {
  std::uint64_t v;
  std::memcpy(&v, id.secret().data() + 8 * word, sizeof v);
  return v;
}

std::string describe_args(const ring::Submission& a) {
  return "count=" + std::to_string(a.count) + " dtype=" +
         std::string(kernels::dtype_name(static_cast<kernels::DType>(a.dtype))) +
         " op=" + (a.op == 0 ? "sum" : "mean") + " codecs=" +
         std::string(kernels::codec_name(static_cast<kernels::Codec>(a.scatter_codec))) + "/" +
         std::string(kernels::codec_name(static_cast<kernels::Codec>(a.gather_codec))) +
         " key=" + std::to_string(a.tensor_key);
}

}  // namespace

GroupState::GroupState(Daemon::Impl& daemon, transport::UniqueId id, GroupParams params)
    : daemon_(daemon),
      id_(std::move(id)),
      params_(params),
      members_(static_cast<std::size_t>(params.local_size)),
      staging_(std::make_unique<HostStaging[]>(static_cast<std::size_t>(params.local_size))) {
  worker_ = std::thread([this] { worker_main(); });
}

GroupState::~GroupState() {
  fail(unavailable("group " + name() + " destroyed"));
  if (worker_.joinable()) worker_.join();
}

std::string GroupState::name() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(secret_word(id_, 3) & 0xffffffffu));
  return buf;
}

Status GroupState::add_member(const std::shared_ptr<Session>& session, std::uint32_t handle, int rank, int nranks,
                              int local_size, std::uint64_t seed, std::uint32_t uid) {
  std::lock_guard lock(mutex_);
  if (uid != params_.uid)
    return invalid_argument("group " + name() + " on this node belongs to uid " + std::to_string(params_.uid) +
                            "; uid " + std::to_string(uid) + " may not join it");
  if (nranks != params_.nranks || local_size != params_.local_size || seed != params_.seed)
    return invalid_argument("group " + name() + ": rank " + std::to_string(rank) + " joins with nranks=" +
                            std::to_string(nranks) + " local_size=" + std::to_string(local_size) + " seed=" +
                            std::to_string(seed) + ", the first local trainer joined with nranks=" +
                            std::to_string(params_.nranks) + " local_size=" + std::to_string(params_.local_size) +
                            " seed=" + std::to_string(params_.seed));
  const int first = params_.node_rank * params_.local_size;
  if (rank < first || rank >= first + params_.local_size)
    return invalid_argument("group " + name() + ": rank " + std::to_string(rank) +
                            " cannot be on this node, which holds ranks " +
                            std::to_string(first) + ".." + std::to_string(first + params_.local_size - 1) +
                            " (trainers of a node must hold consecutive ranks)");
  if (!failed_.is_ok()) return failed_;
  Member& m = members_[static_cast<std::size_t>(rank - first)];
  if (m.present || m.join_replied || formed_)
    return invalid_argument("group " + name() + ": rank " + std::to_string(rank) + " already joined on this node");
  m.session = session;
  m.handle = handle;
  m.pid = session->credentials().pid;
  m.present = true;
  ++joined_;
  cv_.notify_all();
  return Status::ok();
}

void GroupState::submit(int rank, OpRequest op) {
  std::unique_lock lock(mutex_);
  if (!failed_.is_ok()) {
    const Status reason = failed_;
    lock.unlock();
    complete(op, reason);
    return;
  }
  const std::size_t bytes = op.args.count * kernels::dtype_size(static_cast<kernels::DType>(op.args.dtype));
  members_[static_cast<std::size_t>(rank - params_.node_rank * params_.local_size)].queue.push_back(std::move(op));
  // A worker inside allreduce_overlapped() may be waiting on the network: let it take this one now.
  if (executing_ && communicator_ && params_.nnodes > 1) communicator_->wake();
  // A small single-node operation runs right here, on the io thread that saw its last submission:
  // it takes microseconds, less than waking the worker would.
  std::vector<OpRequest> ops;
  std::uint64_t k = 0;
  if (params_.nnodes == 1 && bytes <= kInlineBytes && pop_ready_locked(&ops, &k)) {
    lock.unlock();
    run_popped(ops, k);
    return;
  }
  cv_.notify_all();
}

void GroupState::member_left(int rank, const std::string& reason) {
  std::lock_guard lock(mutex_);
  Member& m = members_[static_cast<std::size_t>(rank - params_.node_rank * params_.local_size)];
  m.present = false;
  m.session.reset();
  set_failed_locked(Status(StatusCode::kPeerFailure, "group " + name() + ": " + reason));
}

void GroupState::fail(const Status& reason) {
  std::lock_guard lock(mutex_);
  set_failed_locked(reason);
}

void GroupState::set_failed_locked(const Status& reason) {
  if (failed_.is_ok()) {
    failed_ = reason;
    record_error_locked(reason.message());
    formation_stop_.request_stop();  // a worker still forming the inter-node group gives up now
    // A worker inside an inter-node allreduce ends it (after the engine's grace period) instead
    // of waiting for its deadline.
    if (communicator_)
      for (int p = 0; p < communicator_->size(); ++p)
        if (p != communicator_->rank()) communicator_->notify_peer_failure(p, reason);
  }
  for (Member& m : members_) {
    while (!m.queue.empty()) {
      complete(m.queue.front(), failed_);
      ++ops_failed_;
      m.queue.pop_front();
    }
  }
  cv_.notify_all();
}

bool GroupState::all_left() const {
  std::lock_guard lock(mutex_);
  for (const Member& m : members_)
    if (m.present) return false;
  return true;
}

void GroupState::record_error_locked(const std::string& message) {
  errors_.push_back(message);
  if (errors_.size() > kMaxGroupErrors) errors_.pop_front();
}

void GroupState::complete(const OpRequest& op, const Status& status) {
  if (auto session = op.session.lock()) session->complete(op.user_data, status);
}

void GroupState::reply_join(const Status& status) {
  std::lock_guard lock(mutex_);
  for (Member& m : members_) {
    if (!m.present || m.join_replied) continue;
    m.join_replied = true;
    protocol::Reply body;
    body.u32 = m.handle;
    if (auto session = m.session.lock())
      session->send_reply(protocol::encode_reply(protocol::MessageType::kGroupJoin, status, body));
  }
}

void GroupState::worker_main() {
  Status s = form();
  if (!s) {
    {
      std::lock_guard lock(mutex_);
      set_failed_locked(s);
    }
    spdlog::warn("group {}: {}", name(), s.message());
    reply_join(s);
  }
  worker_done_ = true;
}

Status GroupState::form() {
  {
    std::unique_lock lock(mutex_);
    cv_.wait_until(lock, params_.formation_deadline,
                   [&] { return !failed_.is_ok() || joined_ == params_.local_size; });
    if (!failed_.is_ok()) return failed_;
    if (joined_ != params_.local_size) {
      std::string missing;
      for (std::size_t i = 0; i < members_.size(); ++i)
        if (!members_[i].present)
          missing += (missing.empty() ? "" : ", ") +
                     std::to_string(params_.node_rank * params_.local_size + static_cast<int>(i));
      return Status(StatusCode::kTimeout, "group " + name() + ": " + std::to_string(joined_) + " of " +
                                              std::to_string(params_.local_size) +
                                              " local trainers joined before the deadline (missing: rank " +
                                              missing + ")");
    }
  }
  spdlog::info("group {}: all {} local trainers joined; forming the inter-node group (node {} of {})", name(),
               params_.local_size, params_.node_rank, params_.nnodes);
  collective::CommunicatorOptions copt;
  copt.seed = params_.seed != 0 ? params_.seed : secret_word(id_, 0);
  copt.group_id = secret_word(id_, 1);
  copt.pipeline_chunk_elements = daemon_.config.pipeline_chunk_elements;
  copt.pipeline_window = daemon_.config.pipeline_window;
  std::unique_ptr<transport::Group> inter;
  std::unique_ptr<collective::Communicator> local;
  if (params_.nnodes > 1) {
    transport::GroupOptions options;
    options.communicator = copt;
    // Peers name this node by host in their messages (no spaces allowed): say which trainers it holds.
    const int first = params_.node_rank * params_.local_size;
    options.host_name = daemon_.host_name + "/trainer-ranks-" + std::to_string(first) + ".." +
                        std::to_string(first + params_.local_size - 1);
    const auto now = Clock::now();
    options.bootstrap.formation_timeout = std::max(
        std::chrono::milliseconds(1),
        std::chrono::duration_cast<std::chrono::milliseconds>(params_.formation_deadline - now));
    options.bootstrap.heartbeat_interval = daemon_.config.heartbeat_interval;
    options.bootstrap.heartbeat_timeout = daemon_.config.heartbeat_timeout;
    if (!daemon_.config.ucx_tls.empty()) options.ucx.config.push_back({"TLS", daemon_.config.ucx_tls});
    options.cancel = formation_stop_.get_token();
    auto g = transport::Group::form(id_, params_.node_rank, params_.nnodes, options);
    if (!g) {
      std::lock_guard lock(mutex_);
      if (!failed_.is_ok()) return failed_;  // cancelled: the reason is why the group failed
      return g.status().with_context("group " + name() + ": forming the inter-node group");
    }
    inter = std::move(*g);
  } else {
    auto transports = transport::make_loopback_group(1);
    auto c = collective::Communicator::create(std::move(transports[0]), copt);
    if (!c) return c.status();
    local = std::move(*c);
  }
  collective::Communicator& comm = inter ? inter->communicator() : *local;
  {
    std::lock_guard lock(mutex_);
    if (!failed_.is_ok()) return failed_;
    communicator_ = &comm;
    formed_ = true;
  }
  spdlog::info("group {}: formed ({} trainers on {} nodes)", name(), params_.nranks, params_.nnodes);
  reply_join(Status::ok());
  run_operations();
  if (inter) {
    // Leave through the bootstrap first: the peers hear "rank n (host h, trainer ranks a..b) left
    // the group". Our UCX endpoints stay open while their engines give data from us the grace
    // period, so that message, not a UCX endpoint error, is what their trainers get.
    (void)inter->bootstrap().close();
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, collective::kPeerFailureGrace + std::chrono::milliseconds(500),
                 [&] { return daemon_.stopping.load(); });
  }
  {
    std::lock_guard lock(mutex_);
    communicator_ = nullptr;
  }
  return Status::ok();
}

bool GroupState::pop_ready_locked(std::vector<OpRequest>* ops, std::uint64_t* k) {
  if (executing_ || !formed_ || !failed_.is_ok()) return false;
  for (const Member& m : members_)
    if (m.queue.empty()) return false;
  for (Member& m : members_) {
    ops->push_back(std::move(m.queue.front()));
    m.queue.pop_front();
  }
  *k = next_op_++;
  executing_ = true;
  return true;
}

void GroupState::run_popped(std::vector<OpRequest>& ops, std::uint64_t k) {
  Status s = execute(ops, k);
  if (!s) fail_popped(ops, s);
  std::lock_guard lock(mutex_);
  executing_ = false;
  if (s) ++ops_done_;
  cv_.notify_all();
}

void GroupState::run_operations() {
  for (;;) {
    std::vector<OpRequest> ops;
    std::uint64_t k = 0;
    {
      std::unique_lock lock(mutex_);
      for (;;) {
        if (!failed_.is_ok()) {
          cv_.wait(lock, [&] { return !executing_; });  // an inline operation may still use the communicator
          return;
        }
        if (pop_ready_locked(&ops, &k)) break;
        auto earliest = Clock::time_point::max();
        std::string missing;
        if (!executing_) {
          for (std::size_t i = 0; i < members_.size(); ++i) {
            if (members_[i].queue.empty())
              missing += (missing.empty() ? "" : ", ") +
                         std::to_string(params_.node_rank * params_.local_size + static_cast<int>(i));
            else
              earliest = std::min(earliest, members_[i].queue.front().deadline);
          }
        }
        if (Clock::now() >= earliest) {
          set_failed_locked(Status(StatusCode::kTimeout, "allreduce " + std::to_string(next_op_) + " of group " +
                                                            name() + ": timed out waiting for local rank " + missing +
                                                            " to submit it"));
          return;
        }
        if (earliest == Clock::time_point::max())
          cv_.wait(lock);
        else
          cv_.wait_until(lock, earliest);
      }
    }
    if (overlappable(ops))
      run_overlapped(ops, k);
    else
      run_popped(ops, k);
  }
}

Status GroupState::check_agreement(const std::vector<OpRequest>& ops, std::uint64_t k) const {
  const ring::Submission& a = ops[0].args;
  for (std::size_t i = 1; i < ops.size(); ++i) {
    const ring::Submission& b = ops[i].args;
    if (a.count != b.count || a.dtype != b.dtype || a.op != b.op || a.scatter_codec != b.scatter_codec ||
        a.gather_codec != b.gather_codec || a.tensor_key != b.tensor_key) {
      const int first = params_.node_rank * params_.local_size;
      return invalid_argument("allreduce " + std::to_string(k) + " of group " + name() + ": ranks disagree: rank " +
                              std::to_string(first) + " has " + describe_args(a) + ", rank " +
                              std::to_string(first + static_cast<int>(i)) + " has " + describe_args(b));
    }
  }
  return Status::ok();
}

collective::AllreduceOptions GroupState::options_for(const std::vector<OpRequest>& ops) {
  const ring::Submission& a = ops[0].args;
  auto deadline = ops[0].deadline;
  for (const OpRequest& op : ops) deadline = std::min(deadline, op.deadline);
  collective::AllreduceOptions options;
  options.scatter_codec = static_cast<kernels::Codec>(a.scatter_codec);
  options.gather_codec = static_cast<kernels::Codec>(a.gather_codec);
  options.tensor_key = a.tensor_key;
  options.timeout = std::max(std::chrono::milliseconds(1),
                             std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  // One trainer on this node: the engine runs in place on its buffer, with its dtype and op (the
  // library-mode computation exactly; see hierarchical.h). Several: on their fp32 sum (execute()).
  options.op = ops.size() == 1 ? static_cast<collective::ReduceOp>(a.op) : collective::ReduceOp::kSum;
  options.dtype = ops.size() == 1 ? static_cast<kernels::DType>(a.dtype) : kernels::DType::kF32;
  return options;
}

Result<std::unique_ptr<collective::Tensor>> GroupState::gpu_tensor_of(const OpRequest& op, kernels::DType dtype) {
  if (!cuda_scratch_ || cuda_scratch_->device() != op.cuda->device()) {
    cuda_scratch_.reset();
    TERN_ASSIGN_OR_RETURN(cuda_scratch_, collective::CudaScratch::create(op.cuda->device()));
  }
  return collective::cuda_tensor(op.cuda->device_pointer(op.cuda_offset), dtype, op.args.count, *cuda_scratch_);
}

Status GroupState::fail_in_engine(std::vector<OpRequest>& ops, std::uint64_t k, const Status& local) {
  const collective::AllreduceOptions options = options_for(ops);
  const int first = params_.node_rank * params_.local_size;
  const Status reason(local.code(), "node " + std::to_string(params_.node_rank) + " (ranks " + std::to_string(first) +
                                        ".." + std::to_string(first + params_.local_size - 1) +
                                        "): " + local.message());
  auto tensor = collective::failing_tensor(options.dtype, ops[0].args.count, reason);
  Status s = communicator_->allreduce(*tensor, options);
  if (s) s = reason;  // an empty operation completes; this node still failed its part
  return Status(s.code(), "allreduce " + std::to_string(k) + " of group " + name() + ": " + s.message());
}

Status GroupState::finish_on_gpu(const std::vector<OpRequest>& ops, std::uint64_t k, const Status& s,
                                 const collective::AllreduceOptions& options, const collective::AllreduceStats& stats,
                                 OpTimes times) {
  times.engine_done = Clock::now();
  if (!s) return Status(s.code(), "allreduce " + std::to_string(k) + " of group " + name() + ": " + s.message());
  {
    std::lock_guard lock(mutex_);
    ++ops_gpu_in_place_;
  }
  record_success(ops, k, options, stats, times);
  return Status::ok();
}

Status GroupState::execute_on_gpu(std::vector<OpRequest>& ops, std::uint64_t k) {
  const OpRequest& op = ops[0];
  const auto dtype = static_cast<kernels::DType>(op.args.dtype);
  auto tensor = gpu_tensor_of(op, dtype);
  if (!tensor.is_ok()) return fail_in_engine(ops, k, tensor.status());
  const collective::AllreduceOptions options = options_for(ops);
  collective::AllreduceStats stats;
  OpTimes times;
  times.start = times.local_sum_done = Clock::now();
  const Status s = communicator_->allreduce(**tensor, options, &stats);
  return finish_on_gpu(ops, k, s, options, stats, times);
}

Status GroupState::execute_local_sum_on_gpu(std::vector<OpRequest>& ops, std::uint64_t k) {
  const ring::Submission& a = ops[0].args;
  const auto dtype = static_cast<kernels::DType>(a.dtype);
  const int device = ops[0].cuda->device();
  if (!gpu_local_ || gpu_local_->device() != device) {
    gpu_local_.reset();
    auto created = GpuLocalReduce::create(device);
    if (!created.is_ok()) return fail_in_engine(ops, k, created.status());
    gpu_local_ = std::move(*created);
  }
  std::vector<GpuLocalReduce::Buffer> buffers;
  for (const OpRequest& op : ops) buffers.push_back({op.cuda->device_pointer(op.cuda_offset), op.cuda->device()});
  const collective::AllreduceOptions options = options_for(ops);
  collective::AllreduceStats stats;
  OpTimes times;
  times.start = Clock::now();
  auto acc = gpu_local_->sum(buffers, dtype, a.count);
  times.local_sum_done = Clock::now();
  auto tensor = acc.is_ok() ? collective::cuda_tensor(*acc, kernels::DType::kF32, a.count, gpu_local_->engine_scratch())
                            : Result<std::unique_ptr<collective::Tensor>>(acc.status());
  if (!tensor.is_ok()) return fail_in_engine(ops, k, tensor.status().with_context("local sum on GPU " +
                                                                                  std::to_string(device)));
  Status s = communicator_->allreduce(**tensor, options, &stats);
  if (s) s = gpu_local_->finish(static_cast<collective::ReduceOp>(a.op), params_.nranks, dtype, a.count, buffers);
  return finish_on_gpu(ops, k, s, options, stats, times);
}

Status GroupState::execute(std::vector<OpRequest>& ops, std::uint64_t k) {
  TERN_CHECK(check_agreement(ops, k));
  // (Without CUDA in the build no buffer is a GPU buffer: registering one fails.)
  if (std::all_of(ops.begin(), ops.end(), [](const OpRequest& op) { return op.cuda != nullptr; }))
    return ops.size() == 1 ? execute_on_gpu(ops, k) : execute_local_sum_on_gpu(ops, k);
  const ring::Submission& a = ops[0].args;
  const auto dtype = static_cast<kernels::DType>(a.dtype);
  const std::size_t count = a.count;
  const std::size_t bytes = count * kernels::dtype_size(dtype);
  for (std::size_t i = 0; i < ops.size(); ++i) {  // ops[i] is local rank i's (pop_ready_locked)
    OpRequest& op = ops[i];
    if (!op.cuda) continue;
    auto staging = staging_[i].reserve(bytes);
    const Status copied = staging.is_ok() ? op.cuda->copy_to_host(op.cuda_offset, *staging, bytes) : staging.status();
    if (!copied) return fail_in_engine(ops, k, copied.with_context("local rank " + std::to_string(i)));
    op.data = *staging;
  }
  const collective::AllreduceOptions options = options_for(ops);
  collective::AllreduceStats stats;
  OpTimes times;
  times.start = Clock::now();
  times.local_sum_done = times.start;
  Status s;
  if (ops.size() == 1) {
    s = communicator_->allreduce(ops[0].data, count, options, &stats);
  } else {
    acc_.resize(count);
    std::vector<const void*> inputs;
    for (const OpRequest& r : ops) inputs.push_back(r.data);
    local_sum(inputs, dtype, count, acc_.data());
    times.local_sum_done = Clock::now();
    s = communicator_->allreduce(acc_.data(), count, options, &stats);
    if (s) {
      scale_for_mean(acc_.data(), count, static_cast<collective::ReduceOp>(a.op), params_.nranks);
      for (const OpRequest& r : ops) {
        s = narrow_from_f32(acc_.data(), count, dtype, r.data);
        if (!s) break;
      }
    }
  }
  times.engine_done = Clock::now();
  if (!s) return Status(s.code(), "allreduce " + std::to_string(k) + " of group " + name() + ": " + s.message());
  for (const OpRequest& r : ops)
    if (r.cuda) TERN_CHECK(r.cuda->copy_from_host(r.cuda_offset, r.data, bytes));
  record_success(ops, k, options, stats, times);
  return Status::ok();
}

void GroupState::record_success(const std::vector<OpRequest>& ops, std::uint64_t k,
                                const collective::AllreduceOptions& options, const collective::AllreduceStats& stats,
                                const OpTimes& times) {
  using Ms = std::chrono::duration<double, std::milli>;
  // "gap": from the previous operation's completion to this one's start (the trainers' turnaround:
  // completion wake-up, their own work, submission, the daemon's wake-up); negative when
  // operations overlap.
  spdlog::debug("group {}: allreduce {}: {} elements, gap {:.2f} ms, local sum {:.2f} ms, inter-node {:.2f} ms "
                "(encode {:.2f}, decode {:.2f}), result {:.2f} ms",
                name(), k, ops[0].args.count,
                last_done_ == Clock::time_point{} ? 0.0 : Ms(times.start - last_done_).count(),
                Ms(times.local_sum_done - times.start).count(), Ms(times.engine_done - times.local_sum_done).count(),
                stats.encode_seconds * 1e3, stats.decode_seconds * 1e3, Ms(Clock::now() - times.engine_done).count());
  last_done_ = Clock::now();
  {
    std::lock_guard lock(mutex_);
    CodecStats& cs = codec_stats_[std::string(kernels::codec_name(options.scatter_codec)) + "/" +
                                  std::string(kernels::codec_name(options.gather_codec))];
    ++cs.ops;
    cs.bytes_out += stats.bytes_sent;
    cs.bytes_in += stats.bytes_received;
  }
  for (const OpRequest& r : ops) complete(r, Status::ok());
}

bool GroupState::overlappable(const std::vector<OpRequest>& ops) const {
  // In place on one trainer's host buffer: no shared scratch (acc_, staging_) that two running
  // operations would both use.
  return daemon_.config.overlap_ops > 1 && params_.nnodes > 1 && ops.size() == 1 && !ops[0].cuda;
}

std::optional<collective::OverlappedAllreduce> GroupState::overlapped(std::vector<OpRequest> ops, std::uint64_t k) {
  if (Status s = check_agreement(ops, k); !s) {
    fail_popped(ops, s);
    return std::nullopt;
  }
  collective::OverlappedAllreduce o;
  o.buffer = ops[0].data;
  o.count = ops[0].args.count;
  o.options = options_for(ops);
  auto held = std::make_shared<std::vector<OpRequest>>(std::move(ops));
  const auto started = Clock::now();
  o.done = [this, held, k, options = o.options, started](const Status& s, const collective::AllreduceStats& stats) {
    if (!s) {
      fail_popped(*held, Status(s.code(), "allreduce " + std::to_string(k) + " of group " + name() + ": " + s.message()));
      return;
    }
    OpTimes times;
    times.start = times.local_sum_done = started;
    times.engine_done = Clock::now();
    record_success(*held, k, options, stats, times);
    std::lock_guard lock(mutex_);
    ++ops_done_;
    if (stats.started_overlapped) {
      ++ops_overlapped_;
      ++daemon_.ops_overlapped;
    }
  };
  return o;
}

void GroupState::fail_popped(const std::vector<OpRequest>& ops, const Status& s) {
  std::lock_guard lock(mutex_);
  ++ops_failed_;
  for (const OpRequest& op : ops) complete(op, s);
  set_failed_locked(s);
}

void GroupState::run_overlapped(std::vector<OpRequest>& ops, std::uint64_t k) {
  if (auto first = overlapped(std::move(ops), k)) {
    communicator_->allreduce_overlapped(std::move(*first), [this]() -> std::optional<collective::OverlappedAllreduce> {
      std::vector<OpRequest> more;
      std::uint64_t next = 0;
      {
        std::lock_guard lock(mutex_);
        if (!failed_.is_ok()) return std::nullopt;
        for (const Member& m : members_)
          if (m.queue.empty()) return std::nullopt;
        for (const Member& m : members_) more.push_back(m.queue.front());
        if (!overlappable(more)) return std::nullopt;  // it runs on its own once these are done
        for (Member& m : members_) m.queue.pop_front();
        next = next_op_++;
      }
      return overlapped(std::move(more), next);
    });
  }
  std::lock_guard lock(mutex_);
  executing_ = false;
  cv_.notify_all();
}

nlohmann::json GroupState::status() const {
  std::lock_guard lock(mutex_);
  nlohmann::json j;
  j["id"] = name();
  j["uid"] = params_.uid;
  j["nranks"] = params_.nranks;
  j["local_size"] = params_.local_size;
  j["node_rank"] = params_.node_rank;
  j["nnodes"] = params_.nnodes;
  j["state"] = !failed_.is_ok() ? "failed" : formed_ ? "formed" : "forming";
  if (!failed_.is_ok()) j["failure"] = failed_.message();
  j["members"] = nlohmann::json::array();
  std::size_t in_flight = 0;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    const Member& m = members_[i];
    in_flight += m.queue.size();
    nlohmann::json mj;
    mj["rank"] = params_.node_rank * params_.local_size + static_cast<int>(i);
    mj["present"] = m.present;
    mj["pid"] = m.pid;
    mj["queued"] = m.queue.size();
    j["members"].push_back(mj);
  }
  j["ops_in_flight"] = in_flight;
  j["ops_done"] = ops_done_;
  j["ops_failed"] = ops_failed_;
  j["ops_overlapped"] = ops_overlapped_;
  j["ops_gpu_in_place"] = ops_gpu_in_place_;
  nlohmann::json codecs = nlohmann::json::object();
  for (const auto& [codec, cs] : codec_stats_)
    codecs[codec] = {{"ops", cs.ops}, {"bytes_out", cs.bytes_out}, {"bytes_in", cs.bytes_in}};
  j["codecs"] = codecs;
  j["errors"] = errors_;
  return j;
}

}  // namespace tern::daemon
