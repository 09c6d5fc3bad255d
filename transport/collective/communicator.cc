#include <algorithm>
#include <cstring>
#include <deque>
#include <string>

#include "allreduce_op.h"
#include "buffer_pool.h"
#include "protocol.h"
#include "tern/transport/collective.h"

namespace tern::collective {

// A receive posted once per peer for the whole life of the communicator: the channel on which a
// rank that failed an operation tells the others why (so they fail too, instead of timing out).
struct Communicator::AbortInbox {
  std::vector<std::uint8_t> bytes = std::vector<std::uint8_t>(kMaxAbortMessage);
};


Result<std::unique_ptr<Communicator>> Communicator::create(std::unique_ptr<transport::Transport> transport,
                                                           const CommunicatorOptions& options) {
  if (!transport) return invalid_argument("null transport");
  if (options.pipeline_chunk_elements == 0) return invalid_argument("pipeline chunk of 0 elements");
  if (options.pipeline_window == 0) return invalid_argument("pipeline window of 0 chunks");
  if (transport->size() > (1 << 20)) return invalid_argument("groups are limited to 2^20 ranks");
  std::unique_ptr<Communicator> comm(new Communicator(std::move(transport), options));
  for (int p = 0; p < comm->size(); ++p)
    if (p != comm->rank()) comm->post_abort_receive(p);
  return comm;
}

Communicator::Communicator(std::unique_ptr<transport::Transport> transport, const CommunicatorOptions& options)
    : options_(options), rank_(transport->rank()), size_(transport->size()), transport_(std::move(transport)) {
  buffers_ = std::make_unique<BufferPool>();
  abort_inboxes_.resize(static_cast<std::size_t>(transport_->size()));
  peer_failures_.assign(static_cast<std::size_t>(transport_->size()), Status::ok());
  peer_failure_times_.resize(static_cast<std::size_t>(transport_->size()));
}

Communicator::~Communicator() {
  // The transport completes what is pending (abort receives included) while the inboxes still exist.
  transport_.reset();
}

int Communicator::rank() const { return rank_; }
int Communicator::size() const { return size_; }

Status Communicator::broken() const {
  std::lock_guard lock(broken_mutex_);
  return broken_;
}

Status Communicator::peer_failure(int peer, std::chrono::steady_clock::time_point* since) const {
  std::lock_guard lock(broken_mutex_);
  if (since) *since = peer_failure_times_[static_cast<std::size_t>(peer)];
  return peer_failures_[static_cast<std::size_t>(peer)];
}

Status Communicator::broken_for(std::uint64_t op) const {
  std::lock_guard lock(broken_mutex_);
  return op >= broken_from_op_ ? broken_ : Status::ok();
}

void Communicator::break_group(const Status& reason, std::uint64_t from_op) {
  std::lock_guard lock(broken_mutex_);
  if (broken_.is_ok()) {
    broken_ = reason;
    broken_from_op_ = from_op;
  } else {
    broken_from_op_ = std::min(broken_from_op_, from_op);
  }
}

void Communicator::notify_peer_failure(int peer, const Status& reason) {
  if (peer < 0 || peer >= size() || peer == rank()) return;
  {
    std::lock_guard lock(broken_mutex_);
    if (peer_failures_[static_cast<std::size_t>(peer)].is_ok()) {
      peer_failures_[static_cast<std::size_t>(peer)] = reason;
      peer_failure_times_[static_cast<std::size_t>(peer)] = std::chrono::steady_clock::now();
    }
  }
  // Operations after the running one fail at once; the running one decides (see AllreduceOp).
  break_group(reason, next_op_);
  if (transport_) transport_->wake();  // null while the transport is being destroyed
}

void Communicator::post_abort_receive(int peer) {
  auto& inbox = abort_inboxes_[static_cast<std::size_t>(peer)];
  inbox = std::make_unique<AbortInbox>();
  AbortInbox* box = inbox.get();
  const Status posted = transport_->recv(
      peer, make_tag(0, Phase::kAbort, 0), box->bytes.data(), box->bytes.size(), transport::MemoryKind::kHost,
      [this, peer, box](const transport::Completion& c) {
        if (!c.status.is_ok()) return notify_peer_failure(peer, c.status);
        // Payload: the operation's sequence number (u64 LE), then the reason as text.
        std::uint64_t op = 0;
        if (c.bytes >= sizeof op) std::memcpy(&op, box->bytes.data(), sizeof op);
        const std::size_t text = c.bytes >= sizeof op ? c.bytes - sizeof op : 0;
        const std::string reason(reinterpret_cast<const char*>(box->bytes.data()) + sizeof op, text);
        break_group(Status(StatusCode::kPeerFailure, transport_->peer_name(peer) + " aborted: " + reason), op);
      });
  if (!posted.is_ok()) break_group(posted);
}

// Tells every peer why this rank gave up; waits briefly for the messages to leave.
void Communicator::send_abort(const Status& reason, std::uint64_t op) {
  std::string& message = abort_message_;  // must outlive the sends below
  message.assign(reinterpret_cast<const char*>(&op), sizeof op);
  message += reason.to_string().substr(0, kMaxAbortMessage - sizeof op);
  int pending = 0;
  for (int p = 0; p < size(); ++p) {
    if (p == rank()) continue;
    ++pending;
    if (!transport_->send(p, make_tag(0, Phase::kAbort, 0), message.data(), message.size(), transport::MemoryKind::kHost,
                          [&pending](const transport::Completion&) { --pending; })
             .is_ok())
      --pending;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (pending > 0 && std::chrono::steady_clock::now() < until) (void)transport_->progress(std::chrono::milliseconds(10));
  // A peer that takes no more data within a second is failed: that completes the send (the
  // callbacks reference `pending`, so this function may not return before they have run).
  while (pending > 0) {
    for (int p = 0; p < size(); ++p)
      if (p != rank()) transport_->fail_peer(p, reason);
    (void)transport_->progress(std::chrono::milliseconds(10));
  }
}

Result<Communicator::Residuals*> Communicator::residuals_for(const AllreduceOptions& options, std::size_t count,
                                                             std::size_t shard_count) {
  const bool worker = kernels::codec_uses_error_feedback(options.scatter_codec);
  const bool owner = kernels::codec_uses_error_feedback(options.gather_codec);
  if (!worker && !owner) return static_cast<Residuals*>(nullptr);
  auto [it, inserted] = residuals_.try_emplace(options.tensor_key);
  Residuals& r = it->second;
  if (!inserted && r.count != count)
    return invalid_argument("tensor key " + std::to_string(options.tensor_key) + " was used with " +
                            std::to_string(r.count) + " elements, now " + std::to_string(count) +
                            " (error-feedback residuals are kept per key)");
  r.count = count;
  if (worker && r.worker.size() != count) r.worker.assign(count, 0.0f);
  if (owner && r.owner.size() != shard_count) r.owner.assign(shard_count, 0.0f);
  return &r;
}

Result<std::unique_ptr<AllreduceOp>> Communicator::make_op(Tensor* tensor, std::unique_ptr<Tensor> owned,
                                                           const AllreduceOptions& options) {
  if (Status b = broken(); !b.is_ok()) return Status(b.code(), "communicator is broken: " + b.message());
  const auto fail_all = [&](const Status& s) {
    const Status named = s.with_context("rank " + std::to_string(rank()));
    break_group(named, next_op_);
    send_abort(named, next_op_);
    return named;
  };
  // Argument errors fail the whole group: the other ranks are about to wait for this one.
  for (kernels::Codec codec : {options.scatter_codec, options.gather_codec}) {
    kernels::EncodeOptions probe;
    probe.codec = codec;
    probe.block_size = options.block_size;
    probe.clip = options.clip && codec == kernels::Codec::kTernGrad;
    if (static_cast<unsigned>(codec) >= kernels::kCodecCount) return fail_all(invalid_argument("unknown codec"));
    if (Status s = kernels::validate(probe); !s.is_ok()) return fail_all(s);
  }
  if (static_cast<unsigned>(options.dtype) > 2) return fail_all(invalid_argument("unknown dtype"));
  if (tensor == nullptr) tensor = owned.get();
  const std::size_t count = tensor->count();
  if (tensor->dtype() != options.dtype)
    return fail_all(invalid_argument("the tensor holds " + std::string(kernels::dtype_name(tensor->dtype())) +
                                     " elements, the options say " + std::string(kernels::dtype_name(options.dtype))));
  if (count != 0 && tensor->address() == nullptr)
    return fail_all(invalid_argument("null buffer with a non-zero count"));
  if (options.timeout.count() <= 0) return fail_all(invalid_argument("the timeout must be positive"));
  const Partition partition(count, size(), options.block_size, options_.pipeline_chunk_elements);
  auto residuals = residuals_for(options, count, partition.shard_size(rank()));
  if (!residuals.is_ok()) return fail_all(residuals.status());
  return std::make_unique<AllreduceOp>(*this, *tensor, std::move(owned), options, *residuals, next_op_++);
}

Status Communicator::allreduce(void* buffer, std::size_t count, const AllreduceOptions& options, AllreduceStats* stats) {
  // make_op() checks the dtype before the tensor is used.
  return run_one(make_op(nullptr, host_tensor(buffer, options.dtype, count), options), stats);
}

Status Communicator::allreduce(Tensor& tensor, const AllreduceOptions& options, AllreduceStats* stats) {
  return run_one(make_op(&tensor, nullptr, options), stats);
}

Status Communicator::run_one(Result<std::unique_ptr<AllreduceOp>> made, AllreduceStats* stats) {
  TERN_ASSIGN_OR_RETURN(auto op, std::move(made));
  const Status s = op->run();
  if (stats) *stats = op->stats();
  return s;
}

void Communicator::wake() {
  if (transport_) transport_->wake();
}

namespace {

struct Running {
  std::unique_ptr<AllreduceOp> op;
  std::function<void(const Status&, const AllreduceStats&)> done;
};

// Whether `next` may start while `running` runs: another tensor key (error-feedback residuals are
// per key, and their updates must follow the operations' order) and disjoint memory.
bool may_overlap(const AllreduceOp& running, const OverlappedAllreduce& next) {
  if (running.tensor_key() == next.options.tensor_key) return false;
  const auto* begin = static_cast<const std::uint8_t*>(next.buffer);
  const auto* end = begin + next.count * kernels::dtype_size(next.options.dtype);
  return end <= running.buffer_begin() || begin >= running.buffer_end() || begin == end;
}

}  // namespace

void Communicator::allreduce_overlapped(OverlappedAllreduce first,
                                        const std::function<std::optional<OverlappedAllreduce>()>& next) {
  std::deque<OverlappedAllreduce> waiting;  // handed out, not started: they start in this order
  waiting.push_back(std::move(first));
  std::vector<Running> running;
  // One failed: the group is broken, and draining one operation fails the peers in the transport,
  // which takes every other operation's data with it. So all fail together: each tells the peers
  // (oldest first, while the transport still reaches them), then each drains.
  const auto fail_together = [](std::vector<Running>& ops) {
    Status cause;
    for (const Running& r : ops)
      if (!r.op->status().is_ok()) cause = r.op->status();
    for (Running& r : ops) r.op->abort_with(cause);  // keeps an operation's own error if it has one
    std::sort(ops.begin(), ops.end(), [](const Running& a, const Running& b) { return a.op->number() < b.op->number(); });
    for (Running& r : ops) r.op->announce_failure();
    for (Running& r : ops) r.op->drain_after_failure();
    for (Running& r : ops) {
      const Status s = r.op->finish();
      if (r.done) r.done(s, r.op->stats());
    }
    ops.clear();
  };
  const auto start_waiting = [&] {
    while (!waiting.empty() && running.size() < kMaxOverlappedAllreduces &&
           std::all_of(running.begin(), running.end(),
                       [&](const Running& r) { return may_overlap(*r.op, waiting.front()); })) {
      OverlappedAllreduce o = std::move(waiting.front());
      waiting.pop_front();
      auto op = make_op(nullptr, host_tensor(o.buffer, o.options.dtype, o.count), o.options);
      if (!op.is_ok()) {
        if (o.done) o.done(op.status(), AllreduceStats{});
        continue;
      }
      if (!running.empty()) (*op)->mark_overlapped();
      (*op)->start();
      running.push_back({std::move(*op), std::move(o.done)});
    }
  };
  for (;;) {
    start_waiting();
    if (waiting.empty() && running.size() < kMaxOverlappedAllreduces) {
      if (auto more = next()) {
        waiting.push_back(std::move(*more));
        continue;
      }
    }
    if (running.empty()) {
      if (waiting.empty()) return;
      continue;  // start_waiting() runs it: nothing is running that it could conflict with
    }
    bool worked = false, finished = false;
    auto wait = std::chrono::milliseconds(100);
    for (std::size_t i = 0; i < running.size();) {
      const AllreduceOp::Step r = running[i].op->step();
      if (r == AllreduceOp::Step::kDone && !running[i].op->status().is_ok()) {
        fail_together(running);
        finished = true;
        break;
      }
      if (r == AllreduceOp::Step::kDone) {
        Running done = std::move(running[i]);
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
        const Status s = done.op->finish();
        if (done.done) done.done(s, done.op->stats());
        finished = true;
        continue;
      }
      worked = worked || r == AllreduceOp::Step::kWorked;
      wait = std::min(wait, running[i].op->idle_wait());
      ++i;
    }
    if (finished || running.empty()) continue;
    if (Status s = transport_->progress(worked ? std::chrono::milliseconds(0) : wait); !s.is_ok())
      for (Running& r : running) r.op->abort_with(s);
  }
}

}  // namespace tern::collective
