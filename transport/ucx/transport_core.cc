#include "transport_core.h"

#include <algorithm>
#include <cstdio>

#include "lane_report.h"
#include "ucs_status.h"
#include "ucx_tag.h"

namespace tern::transport::ucx {

namespace {

// ucp_worker_progress calls per drive(): enough to drain a burst, bounded so that a peer flooding
// us cannot keep progress() from returning.
constexpr int kMaxProgressCalls = 256;

const char* kind_name(OpKind kind) { return kind == OpKind::kSend ? "send" : "receive"; }

std::string hex(Tag tag) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(tag));
  return buffer;
}

}  // namespace

Result<std::unique_ptr<TransportCore>> TransportCore::create(std::unique_ptr<LocalState> local, int rank,
                                                             std::vector<std::vector<std::byte>> addresses,
                                                             std::vector<std::string> peer_names) {
  if (local == nullptr) return invalid_argument("UcxTransport::create: the UcxLocalWorker was moved from");
  const std::size_t size = addresses.size();
  if (size == 0 || size > static_cast<std::size_t>(kUcxMaxRanks)) {
    return invalid_argument("UcxTransport::create: " + std::to_string(size) + " addresses; a group has 1 to " +
                            std::to_string(kUcxMaxRanks) + " ranks");
  }
  if (rank < 0 || static_cast<std::size_t>(rank) >= size) {
    return invalid_argument("UcxTransport::create: rank " + std::to_string(rank) + " in a group of " +
                            std::to_string(size));
  }
  if (!peer_names.empty() && peer_names.size() != size) {
    return invalid_argument("UcxTransport::create: " + std::to_string(peer_names.size()) + " peer names for " +
                            std::to_string(size) + " ranks");
  }
  if (peer_names.empty()) {
    for (std::size_t r = 0; r < size; ++r) peer_names.push_back("rank " + std::to_string(r));
  }
  TERN_ASSIGN_OR_RETURN(auto events, EventWait::create());
  std::unique_ptr<TransportCore> core(new TransportCore(std::move(local), std::move(events), rank,
                                                        std::move(peer_names)));
  for (int peer = 0; peer < core->size(); ++peer) {
    if (peer == rank) continue;
    auto endpoint = UcpEndpoint::create(*core->local_->worker, addresses[static_cast<std::size_t>(peer)], peer,
                                        core.get());
    if (!endpoint) return endpoint.status().with_context("cannot connect to " + core->peer_name(peer));
    core->peers_[static_cast<std::size_t>(peer)].endpoint = std::move(*endpoint);
  }
  return core;
}

TransportCore::TransportCore(std::unique_ptr<LocalState> local, std::unique_ptr<EventWait> events, int rank,
                             std::vector<std::string> names)
    : local_(std::move(local)), events_(std::move(events)), rank_(rank), ops_(static_cast<int>(names.size())) {
  peers_.resize(names.size());
  for (std::size_t r = 0; r < names.size(); ++r) peers_[r].name = std::move(names[r]);
}

TransportCore::~TransportCore() { shut_down(); }

std::string TransportCore::peer_name(int peer) const {
  if (peer < 0 || peer >= size()) return "rank " + std::to_string(peer) + " (not in the group)";
  return peers_[static_cast<std::size_t>(peer)].name;
}

Capabilities TransportCore::capabilities() const {
  std::vector<std::string> transports;
  for (const UcxEndpointInfo& info : endpoint_info()) {
    for (const std::string& t : info.transports) {
      if (std::find(transports.begin(), transports.end(), t) == transports.end()) transports.push_back(t);
    }
  }
  std::string description = "ucx " + UcpContext::version() + " [";
  for (std::size_t i = 0; i < transports.size(); ++i) description += (i > 0 ? ", " : "") + transports[i];
  description += transports.empty() ? "no live endpoints]" : "]";
  return {local_->context->cuda_memory(), std::move(description)};
}

std::vector<UcxEndpointInfo> TransportCore::endpoint_info() const {
  std::vector<UcxEndpointInfo> out;
  for (int peer = 0; peer < size(); ++peer) {
    if (peer == rank_) continue;
    const Peer& p = peers_[static_cast<std::size_t>(peer)];
    UcxEndpointInfo info;
    info.peer = peer;
    info.failed = !p.failure.is_ok();
    if (p.endpoint != nullptr && p.endpoint->is_open()) {
      for (const Lane& lane : parse_lanes(p.endpoint->print_info())) {
        if (std::find(info.transports.begin(), info.transports.end(), lane.transport) == info.transports.end()) {
          info.transports.push_back(lane.transport);
        }
        info.lanes.push_back(ucx::describe(lane));
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

Status TransportCore::check_post(OpKind kind, int peer, Tag tag, const void* data, std::size_t size,
                                 MemoryKind memory) const {
  const std::string what = kind == OpKind::kSend ? "send to " : "receive from ";
  if (peer < 0 || peer >= this->size()) {
    return invalid_argument(what + "rank " + std::to_string(peer) + ": not in the group of " +
                            std::to_string(this->size()));
  }
  if (peer == rank_) return invalid_argument(what + "rank " + std::to_string(peer) + ": that is this rank");
  if (!engine_tag_fits(tag)) {
    return invalid_argument(what + peer_name(peer) + ": tag " + hex(tag) +
                            " exceeds 48 bits (the UCX tag's top 16 bits carry the sender's rank)");
  }
  if (data == nullptr && size > 0) {
    return invalid_argument(what + peer_name(peer) + ": null buffer for " + std::to_string(size) + " bytes");
  }
  if (memory != MemoryKind::kHost && memory != MemoryKind::kCuda) {
    return invalid_argument(what + peer_name(peer) + ": unknown memory kind");
  }
  if (memory == MemoryKind::kCuda && !local_->context->cuda_memory()) {
    return unavailable(what + peer_name(peer) + " with CUDA memory: UCX " + UcpContext::version() +
                       " has no CUDA support (it lists no CUDA memory type); stage the data through host "
                       "memory");
  }
  if (shutting_down_) return unavailable(what + peer_name(peer) + ": the transport is shutting down");
  return Status::ok();
}

namespace {
ucp_request_param_t request_param(Op* op, MemoryKind memory) {
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_MEMORY_TYPE;
  param.user_data = op;
  param.memory_type = memory == MemoryKind::kCuda ? UCS_MEMORY_TYPE_CUDA : UCS_MEMORY_TYPE_HOST;
  return param;
}
}  // namespace

Status TransportCore::send(int peer, Tag tag, const void* data, std::size_t length, MemoryKind memory,
                           CompletionFn done) {
  TERN_CHECK(check_post(OpKind::kSend, peer, tag, data, length, memory));
  Peer& p = peers_[static_cast<std::size_t>(peer)];
  if (!p.failure.is_ok()) {
    queue(std::move(done), {p.failure, 0});
    return Status::ok();
  }
  Op* op = ops_.create(peer, OpKind::kSend, tag, length, std::move(done));
  ucp_request_param_t param = request_param(op, memory);
  param.cb.send = &OpTable::on_send_done;
  posted(op, ucp_tag_send_nbx(p.endpoint->get(), data, length, make_ucx_tag(rank_, tag), &param));
  return Status::ok();
}

Status TransportCore::recv(int peer, Tag tag, void* data, std::size_t capacity, MemoryKind memory,
                           CompletionFn done) {
  TERN_CHECK(check_post(OpKind::kRecv, peer, tag, data, capacity, memory));
  Peer& p = peers_[static_cast<std::size_t>(peer)];
  if (!p.failure.is_ok()) {
    queue(std::move(done), {p.failure, 0});
    return Status::ok();
  }
  Op* op = ops_.create(peer, OpKind::kRecv, tag, capacity, std::move(done));
  ucp_request_param_t param = request_param(op, memory);
  param.cb.recv = &OpTable::on_recv_done;
  param.op_attr_mask |= UCP_OP_ATTR_FLAG_NO_IMM_CMPL;  // see op_table.h: the length comes with the callback
  const ucs_status_ptr_t result =
      ucp_tag_recv_nbx(local_->worker->get(), data, capacity, make_ucx_tag(peer, tag), kFullTagMask, &param);
  posted(op, result);
  return Status::ok();
}

// A request: UCX calls back later. Finished inside the call: UCX will not call back; the
// completion is queued now and reported at the next progress(), never from inside send()/recv().
void TransportCore::posted(Op* op, ucs_status_ptr_t result) {
  if (ops_.posted(op, result)) return;
  finish(op);
  ops_.discard(op);
}

// Turns UCX's outcome for `op` into the user's Completion (once).
void TransportCore::finish(Op* op) {
  if (op->reported) return;
  Completion completion;
  const ucs_status_t status = op->ucx_status;
  if (status == UCS_OK) {
    completion.bytes = op->kind == OpKind::kSend ? op->size : op->received;
  } else if (status == UCS_ERR_MESSAGE_TRUNCATED && op->kind == OpKind::kRecv) {
    std::string message = "message from " + peer_name(op->peer) + " with tag " + hex(op->tag) +
                          " does not fit the receive buffer (";
    if (op->received > op->size) message += "message " + std::to_string(op->received) + " bytes, ";
    message += "capacity " + std::to_string(op->size) + " bytes";
    completion.status = corrupt_data(message + ")");
  } else if (shutting_down_) {
    completion.status = shutdown_status(*op);
  } else {
    // Any other error means the link to the peer broke (UCX completes the requests of a failed
    // endpoint with an error, sometimes before its error callback): fail the whole peer.
    fail(op->peer, peer_failure(op->peer, status));
    if (op->reported) return;
    completion.status = peers_[static_cast<std::size_t>(op->peer)].failure;
  }
  ops_.mark_reported(op);
  queue(std::move(op->done), std::move(completion));
}

void TransportCore::queue(CompletionFn done, Completion completion) {
  ready_.push_back({std::move(done), std::move(completion)});
}

void TransportCore::drive() {
  for (int i = 0; i < kMaxProgressCalls && local_->worker->progress() != 0; ++i) {
  }
  settle();
}

// Acts on what UCX recorded during its calls: endpoint errors first (so that requests UCX failed
// along with the endpoint report the endpoint's reason), then completed requests.
void TransportCore::settle() {
  for (;;) {
    if (!endpoint_errors_.empty()) {
      const auto errors = std::exchange(endpoint_errors_, {});
      for (const auto& [peer, status] : errors) fail(peer, peer_failure(peer, status));
      continue;
    }
    Op* op = ops_.pop_done();
    if (op == nullptr) break;
    finish(op);
    ops_.release_if_finished(op);
  }
  closing_.poll();
}

std::size_t TransportCore::run_ready() {
  // Only what is queued now: callbacks that post operations completing at once queue more, which
  // the next progress() runs (so a callback chain cannot keep this call from returning).
  const std::size_t count = ready_.size();
  for (std::size_t i = 0; i < count; ++i) {
    Ready item = std::move(ready_.front());
    ready_.pop_front();
    if (item.done) item.done(item.completion);
  }
  return count;
}

Status TransportCore::progress(std::chrono::milliseconds max_wait) {
  const auto deadline = std::chrono::steady_clock::now() + std::max(max_wait, std::chrono::milliseconds(0));
  for (;;) {
    drive();
    if (run_ready() > 0) return Status::ok();
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return Status::ok();
    TERN_ASSIGN_OR_RETURN(const bool armed, local_->worker->arm());
    if (!armed) continue;  // UCX has events to process first
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    TERN_ASSIGN_OR_RETURN(const bool woken, events_->wait(local_->worker->event_fd(),
                                                          std::min(left, local_->options.poll_slice)));
    if (woken) {
      drive();
      run_ready();
      return Status::ok();
    }
  }
}

void TransportCore::fail_peer(int peer, const Status& reason) {
  if (peer < 0 || peer >= size() || peer == rank_) return;
  fail(peer, reason.is_ok() ? Status(StatusCode::kPeerFailure, peer_name(peer) + " failed (no reason given)")
                            : reason);
}

std::string TransportCore::describe(const Op& op) const {
  return std::string(kind_name(op.kind)) + (op.kind == OpKind::kSend ? " to " : " from ") + peer_name(op.peer) +
         " with tag " + hex(op.tag);
}

}  // namespace tern::transport::ucx
