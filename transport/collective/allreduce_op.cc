#include "allreduce_op.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "buffer_pool.h"
#include "tern/kernels/wire_format.h"

namespace tern::collective {
namespace {

using Clock = std::chrono::steady_clock;
using kernels::Codec;
using kernels::DType;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::size_t capacity(Codec codec, std::uint32_t block, std::size_t count) {
  return *kernels::encoded_size(codec, block, count);  // options were validated before the op started
}

}  // namespace

AllreduceOp::AllreduceOp(Communicator& comm, Tensor& tensor, std::unique_ptr<Tensor> owned,
                         const AllreduceOptions& options, Communicator::Residuals* residuals, std::uint64_t op)
    : comm_(comm),
      transport_(*comm.transport_),
      owned_tensor_(std::move(owned)),
      tensor_(&tensor),
      count_(tensor_->count()),
      options_(options),
      residuals_(residuals),
      op_(op),
      me_(comm.rank()),
      ranks_(comm.size()),
      elem_bytes_(kernels::dtype_size(options.dtype)),
      partition_(count_, comm.size(), options.block_size, comm.options_.pipeline_chunk_elements),
      start_(Clock::now()),
      deadline_(start_ + options.timeout) {
  descriptor_.group_id = comm.options_.group_id;
  descriptor_.op = op;
  descriptor_.count = count_;
  descriptor_.dtype = static_cast<std::uint8_t>(options.dtype);
  descriptor_.scatter_codec = static_cast<std::uint8_t>(options.scatter_codec);
  descriptor_.gather_codec = static_cast<std::uint8_t>(options.gather_codec);
  descriptor_.reduce_op = static_cast<std::uint8_t>(options.op);
  descriptor_.clip = options.clip ? 1 : 0;
  descriptor_.block_size = options.block_size;
  descriptor_.chunk_elements = comm.options_.pipeline_chunk_elements;
  descriptor_.tensor_key = options.tensor_key;
  descriptor_bytes_.resize(kDescriptorBytes);
  write_descriptor(descriptor_, descriptor_bytes_.data());

  const auto n = static_cast<std::size_t>(ranks_);
  scatter_.resize(partition_.chunks(me_));
  if (comm.accumulator_.size() < partition_.max_chunk()) comm.accumulator_.resize(partition_.max_chunk());
  gather_.resize(n);
  for (int j = 0; j < ranks_; ++j)
    if (j != me_) gather_[static_cast<std::size_t>(j)].resize(partition_.chunks(j));
  gather_posted_.assign(n, 0);
  gather_outstanding_.assign(n, 0);
  gather_done_.assign(n, 0);
  peer_descriptors_.resize(n);
  descriptor_got_.assign(n, 0);
}

std::string AllreduceOp::describe() const {
  return "allreduce #" + std::to_string(op_) + " (" + std::to_string(count_) + " " +
         std::string(kernels::dtype_name(options_.dtype)) + ", " +
         std::string(kernels::codec_name(options_.scatter_codec)) + "/" +
         std::string(kernels::codec_name(options_.gather_codec)) + ")";
}

void AllreduceOp::fail(const Status& status) {
  if (error_.is_ok()) error_ = status;
}

kernels::EncodeOptions AllreduceOp::encode_options(Codec codec, Phase phase, std::size_t element_offset) const {
  kernels::EncodeOptions o;
  o.codec = codec;
  o.block_size = options_.block_size;
  o.clip = options_.clip && codec == Codec::kTernGrad;
  o.seed = comm_.options_.seed;
  // Independent rounding per (operation, direction, encoding rank); see docs/collective.md.
  o.stream = rounding_stream(op_, phase, me_);
  o.element_offset = element_offset;
  return o;
}

void AllreduceOp::send_to(int peer, Phase phase, std::uint32_t chunk, SendBuffer* buffer) {
  ++in_flight_;
  ++buffer->pending;
  stats_.bytes_sent += buffer->bytes.size();
  const Status posted = transport_.send(peer, make_tag(op_, phase, chunk), buffer->bytes.data(), buffer->bytes.size(),
                                        transport::MemoryKind::kHost, [this, buffer, phase](const transport::Completion& c) {
                                          --in_flight_;
                                          --buffer->pending;
                                          if (buffer->pending == 0) {
                                            comm_.buffers_->recycle(buffer->bytes);
                                            if (phase == Phase::kScatter) --scatter_sends_in_flight_;
                                            if (phase == Phase::kGather) --gather_sends_in_flight_;
                                          }
                                          if (!c.status.is_ok()) fail(c.status);
                                        });
  if (!posted.is_ok()) {
    --in_flight_;
    --buffer->pending;
    fail(posted);
  }
}

void AllreduceOp::recv_from(int peer, Phase phase, std::uint32_t chunk, std::vector<std::uint8_t>& into,
                            std::function<void()> on_arrival) {
  ++in_flight_;
  const Status posted = transport_.recv(
      peer, make_tag(op_, phase, chunk), into.data(), into.size(), transport::MemoryKind::kHost,
      [this, &into, on_arrival = std::move(on_arrival)](const transport::Completion& c) {
        --in_flight_;
        if (!c.status.is_ok()) return fail(c.status);
        into.resize(c.bytes);
        stats_.bytes_received += c.bytes;
        on_arrival();
      });
  if (!posted.is_ok()) {
    --in_flight_;
    fail(posted);
  }
}

void AllreduceOp::post_descriptors() {
  for (int p = 0; p < ranks_; ++p) {
    if (p == me_) continue;
    auto& theirs = peer_descriptors_[static_cast<std::size_t>(p)];
    theirs.resize(kDescriptorBytes + 1);  // one spare byte: a longer message is caught as truncated
    recv_from(p, Phase::kDescriptor, 0, theirs, [this, p, &theirs] {
      descriptor_got_[static_cast<std::size_t>(p)] = 1;
      auto parsed = parse_descriptor(theirs);
      if (!parsed.is_ok()) return fail(parsed.status().with_context("descriptor from " + transport_.peer_name(p)));
      const std::string diff = describe_mismatch(descriptor_, *parsed);
      if (!diff.empty())
        return fail(invalid_argument(describe() + ": arguments differ between rank " + std::to_string(me_) + " and " +
                                     transport_.peer_name(p) + ": " + diff));
      ++descriptors_ok_;
    });
    ++in_flight_;
    const Status posted = transport_.send(p, make_tag(op_, Phase::kDescriptor, 0), descriptor_bytes_.data(),
                                          descriptor_bytes_.size(), transport::MemoryKind::kHost,
                                          [this](const transport::Completion& c) {
                                            --in_flight_;
                                            if (!c.status.is_ok()) fail(c.status);
                                          });
    if (!posted.is_ok()) {
      --in_flight_;
      fail(posted);
    }
  }
}

// Receives are posted only once every peer's descriptor matched ours: a peer with other arguments
// would otherwise send chunks of sizes we do not expect.
void AllreduceOp::post_receives() {
  if (descriptors_ok_ != ranks_ - 1) return;
  const std::uint32_t window = comm_.options_.pipeline_window;
  while (scatter_posted_ < scatter_.size() && scatter_posted_ < reduced_ + window) {
    const std::uint32_t c = scatter_posted_++;
    ScatterChunk& chunk = scatter_[c];
    chunk.from.resize(static_cast<std::size_t>(ranks_));
    chunk.got.assign(static_cast<std::size_t>(ranks_), 0);
    const std::size_t bytes = capacity(options_.scatter_codec, options_.block_size, partition_.chunk_size(me_, c));
    for (int p = 0; p < ranks_; ++p) {
      if (p == me_) continue;
      chunk.from[static_cast<std::size_t>(p)] = comm_.buffers_->take(bytes);
      recv_from(p, Phase::kScatter, c, chunk.from[static_cast<std::size_t>(p)], [&chunk, p] {
        chunk.got[static_cast<std::size_t>(p)] = 1;
        ++chunk.arrived;
      });
    }
  }
  for (int j = 0; j < ranks_; ++j) {
    if (j == me_) continue;
    const auto js = static_cast<std::size_t>(j);
    while (gather_posted_[js] < gather_[js].size() && gather_outstanding_[js] < window) {
      const std::uint32_t c = gather_posted_[js]++;
      ++gather_outstanding_[js];
      GatherChunk& chunk = gather_[js][c];
      chunk.bytes = comm_.buffers_->take(capacity(options_.gather_codec, options_.block_size, partition_.chunk_size(j, c)));
      recv_from(j, Phase::kGather, c, chunk.bytes, [this, &chunk, j, c] {
        chunk.arrived = true;
        gather_arrived_.emplace_back(j, c);
      });
    }
  }
}

Status AllreduceOp::check_chunk(const std::vector<std::uint8_t>& bytes, Codec codec, std::size_t count, int from) const {
  auto view = kernels::parse_chunk(bytes);
  if (!view.is_ok()) return view.status().with_context(describe() + ": chunk from " + transport_.peer_name(from));
  if (view->header.codec != codec || view->header.count != count ||
      (kernels::codec_is_block_scaled(codec) && view->header.block_size != options_.block_size))
    return corrupt_data(describe() + ": chunk from " + transport_.peer_name(from) + " holds " +
                        std::to_string(view->header.count) + " " + std::string(kernels::codec_name(view->header.codec)) +
                        " elements, expected " + std::to_string(count) + " " + std::string(kernels::codec_name(codec)));
  return Status::ok();
}

bool AllreduceOp::encode_next_scatter() {
  const std::uint32_t window = comm_.options_.pipeline_window;
  const std::uint32_t rounds = ranks_ > 1 ? partition_.chunks(0) : 0;  // shard 0 has the most chunks
  while (next_scatter_chunk_ < rounds) {
    if (scatter_sends_in_flight_ >= static_cast<int>(window) * (ranks_ - 1)) return false;
    const int peer = (me_ + next_scatter_peer_) % ranks_;
    const std::uint32_t c = next_scatter_chunk_;
    if (++next_scatter_peer_ >= ranks_) {
      next_scatter_peer_ = 1;
      ++next_scatter_chunk_;
    }
    if (c >= partition_.chunks(peer)) continue;

    const std::size_t begin = partition_.chunk_begin(peer, c), len = partition_.chunk_size(peer, c);
    float* residual = kernels::codec_uses_error_feedback(options_.scatter_codec) ? residuals_->worker.data() + begin : nullptr;
    SendBuffer& out = scatter_sends_.emplace_back();
    while (scatter_sends_.size() > 1 && scatter_sends_.front().pending == 0 && scatter_sends_.front().bytes.empty())
      scatter_sends_.pop_front();
    out.bytes = comm_.buffers_->take(capacity(options_.scatter_codec, options_.block_size, len));
    const auto t0 = Clock::now();
    const Status s =
        tensor_->encode(begin, len, residual, encode_options(options_.scatter_codec, Phase::kScatter, begin), out.bytes);
    stats_.encode_seconds += seconds_since(t0);
    if (!s.is_ok()) {
      fail(s.with_context(describe() + ": rank " + std::to_string(me_) + ", elements " + std::to_string(begin) + "+"));
      return false;
    }
    ++scatter_sends_in_flight_;
    send_to(peer, Phase::kScatter, c, &out);
    return true;
  }
  return false;
}

bool AllreduceOp::reduce_next_chunk() {
  if (reduced_ >= scatter_.size()) return false;
  ScatterChunk& chunk = scatter_[reduced_];
  if (chunk.arrived < ranks_ - 1) return false;
  if (gather_sends_in_flight_ >= static_cast<int>(comm_.options_.pipeline_window)) return false;
  const std::uint32_t c = reduced_;
  const std::size_t begin = partition_.chunk_begin(me_, c), len = partition_.chunk_size(me_, c);
  float* acc = comm_.accumulator_.data();

  const auto t0 = Clock::now();
  if (Status s = tensor_->widen(begin, len, acc); !s.is_ok()) {
    fail(s.with_context(describe() + ": rank " + std::to_string(me_)));
    return false;
  }
  if (kernels::codec_uses_error_feedback(options_.scatter_codec)) {
    // This rank's own share never travels: it is used exactly, so nothing is left to feed back.
    float* e = residuals_->worker.data() + begin;
    for (std::size_t i = 0; i < len; ++i) acc[i] += e[i];
    std::fill(e, e + len, 0.0f);
  }
  for (int p = 0; p < ranks_; ++p) {  // fixed order: the same bits on every run
    if (p == me_) continue;
    auto& bytes = chunk.from[static_cast<std::size_t>(p)];
    Status s = check_chunk(bytes, options_.scatter_codec, len, p);
    if (s.is_ok()) s = kernels::decode_accumulate(bytes, acc, len).with_context("chunk from " + transport_.peer_name(p));
    if (!s.is_ok()) {
      fail(s);
      return false;
    }
    comm_.buffers_->recycle(bytes);
  }
  if (options_.op == ReduceOp::kMean) {
    const float inv = 1.0f / static_cast<float>(ranks_);
    for (std::size_t i = 0; i < len; ++i) acc[i] *= inv;
  }
  stats_.decode_seconds += seconds_since(t0);

  const auto t1 = Clock::now();
  float* owner_residual = kernels::codec_uses_error_feedback(options_.gather_codec)
                              ? residuals_->owner.data() + (begin - partition_.shard_begin(me_))
                              : nullptr;
  SendBuffer& out = gather_sends_.emplace_back();
  while (gather_sends_.size() > 1 && gather_sends_.front().pending == 0 && gather_sends_.front().bytes.empty())
    gather_sends_.pop_front();
  out.bytes = comm_.buffers_->take(capacity(options_.gather_codec, options_.block_size, len));
  Status s = kernels::encode(acc, DType::kF32, len, owner_residual,
                             encode_options(options_.gather_codec, Phase::kGather, begin), out.bytes);
  if (s.is_ok() && owner_residual) s = kernels::residual_update(out.bytes, acc, DType::kF32, len, owner_residual);
  stats_.encode_seconds += seconds_since(t1);
  if (!s.is_ok()) {
    fail(s.with_context(describe() + ": reduced shard of rank " + std::to_string(me_)));
    return false;
  }
  ++gather_sends_in_flight_;
  for (int p = 0; p < ranks_; ++p)
    if (p != me_) send_to(p, Phase::kGather, c, &out);
  if (ranks_ == 1) --gather_sends_in_flight_;
  // This rank decodes the very bytes it sent, so every rank holds the same values.
  const auto t2 = Clock::now();
  s = tensor_->decode(out.bytes, begin, len);
  stats_.decode_seconds += seconds_since(t2);
  if (ranks_ == 1) comm_.buffers_->recycle(out.bytes);
  if (!s.is_ok()) {
    fail(s.with_context(describe() + ": rank " + std::to_string(me_)));
    return false;
  }
  chunk.from = {};
  ++reduced_;
  return true;
}

bool AllreduceOp::decode_arrived_gather() {
  if (gather_arrived_.empty()) return false;
  const auto [j, c] = gather_arrived_.front();
  gather_arrived_.pop_front();
  const auto js = static_cast<std::size_t>(j);
  GatherChunk& chunk = gather_[js][c];
  const std::size_t begin = partition_.chunk_begin(j, c), len = partition_.chunk_size(j, c);
  const auto t0 = Clock::now();
  Status s = check_chunk(chunk.bytes, options_.gather_codec, len, j);
  if (s.is_ok())
    s = tensor_->decode(chunk.bytes, begin, len)
            .with_context(describe() + ": chunk from " + transport_.peer_name(j));
  stats_.decode_seconds += seconds_since(t0);
  if (!s.is_ok()) {
    fail(s);
    return false;
  }
  comm_.buffers_->recycle(chunk.bytes);
  ++gather_done_[js];
  --gather_outstanding_[js];
  return true;
}

bool AllreduceOp::complete() const {
  if (in_flight_ != 0 || descriptors_ok_ != ranks_ - 1) return false;
  if ((ranks_ > 1 && next_scatter_chunk_ < partition_.chunks(0)) || scatter_sends_in_flight_ != 0) return false;
  if (reduced_ != scatter_.size() || gather_sends_in_flight_ != 0) return false;
  for (int j = 0; j < ranks_; ++j)
    if (j != me_ && gather_done_[static_cast<std::size_t>(j)] != gather_[static_cast<std::size_t>(j)].size()) return false;
  return true;
}

bool AllreduceOp::waiting_for(int peer) const {
  const auto ps = static_cast<std::size_t>(peer);
  if (!descriptor_got_[ps]) return true;
  for (std::uint32_t c = reduced_; c < scatter_.size(); ++c)
    if (c >= scatter_posted_ || !scatter_[c].got[ps]) return true;
  for (const GatherChunk& chunk : gather_[ps])
    if (!chunk.arrived) return true;
  return false;
}

Status AllreduceOp::check_deadline_and_failures() {
  if (Status broken = comm_.broken_for(op_); !broken.is_ok()) return broken;
  // A peer reported failed (heartbeats, its connection to the rendezvous, its transport endpoint)
  // matters only if this operation still needs something from it, and only after a grace period:
  // a peer that finished its part and exited may have data for us still in flight. When several
  // have failed, the one reported first is the cause: the others often left because of it.
  Status first;
  Clock::time_point first_since = Clock::time_point::max();
  for (int p = 0; p < ranks_; ++p) {
    if (p == me_) continue;
    Clock::time_point since;
    if (Status failed = comm_.peer_failure(p, &since); !failed.is_ok() && waiting_for(p) &&
                                                       Clock::now() - since >= kPeerFailureGrace && since < first_since) {
      first = failed;
      first_since = since;
    }
  }
  if (!first.is_ok()) return first;
  if (Clock::now() < deadline_) return Status::ok();
  std::string who;
  for (int p = 0; p < ranks_; ++p)
    if (p != me_ && waiting_for(p)) who += (who.empty() ? "" : ", ") + transport_.peer_name(p);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout).count();
  return Status(StatusCode::kTimeout, describe() + " timed out after " + std::to_string(ms) + " ms on rank " +
                                          std::to_string(me_) + (who.empty() ? "" : ", waiting for " + who));
}

void AllreduceOp::drain() {
  for (int p = 0; p < ranks_; ++p)
    if (p != me_) transport_.fail_peer(p, error_);
  // Every posted operation completes (the Transport contract); only then may this object go away.
  while (in_flight_ > 0) (void)transport_.progress(std::chrono::milliseconds(10));
}

void AllreduceOp::start() { post_descriptors(); }

void AllreduceOp::abort_with(const Status& status) { fail(status); }

AllreduceOp::Step AllreduceOp::step() {
  if (!error_.is_ok()) return Step::kDone;
  if (complete()) return Step::kDone;  // all data in: a failure reported now belongs to a later operation
  if (Status s = check_deadline_and_failures(); !s.is_ok()) {
    fail(s);
    return Step::kDone;
  }
  post_receives();
  bool worked = reduce_next_chunk();
  worked = decode_arrived_gather() || worked;
  worked = encode_next_scatter() || worked;
  if (!error_.is_ok() || complete()) return Step::kDone;
  return worked ? Step::kWorked : Step::kIdle;
}

std::chrono::milliseconds AllreduceOp::idle_wait() const {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
  return std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(100));
}

void AllreduceOp::announce_failure() {
  comm_.break_group(error_, op_);
  comm_.send_abort(error_, op_);
}

Status AllreduceOp::finish() {
  stats_.total_seconds = seconds_since(start_);
  if (error_.is_ok()) return Status::ok();
  if (!drained_) {
    announce_failure();
    drain();
  }
  return error_;
}

Status AllreduceOp::run() {
  start();
  for (;;) {
    const Step r = step();
    if (r == Step::kDone) break;
    if (Status s = transport_.progress(r == Step::kWorked ? std::chrono::milliseconds(0) : idle_wait()); !s.is_ok())
      fail(s);
  }
  return finish();
}

}  // namespace tern::collective
