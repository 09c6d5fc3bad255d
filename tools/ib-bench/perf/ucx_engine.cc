#include "perf/ucx_engine.h"

#include <ucp/api/ucp.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "lane_report.h"
#include "ucp_config.h"
#include "ucp_context.h"
#include "ucp_worker.h"
#include "ucs_status.h"

namespace tern::ibbench {

namespace tx = tern::transport::ucx;

namespace {

constexpr ucp_tag_t kTagData = 0x1B1B000000000000ULL;
constexpr ucp_tag_t kTagEnd = 0x1B1B000000000001ULL;
constexpr ucp_tag_t kMaskDataOrEnd = ~ucp_tag_t{1};
constexpr ucp_tag_t kTagAck = 0x1B1C000000000000ULL;
constexpr ucp_tag_t kMaskExact = ~ucp_tag_t{0};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Completion flag for one request; the callback frees the request (UCX calls no callback for a
// request freed early, so it is kept until here).
struct Flag {
  bool done = false;
  ucs_status_t status = UCS_OK;
  ucp_tag_t tag = 0;
  std::size_t length = 0;
};

void on_send_flag(void* request, ucs_status_t status, void* user_data) {
  auto* f = static_cast<Flag*>(user_data);
  f->done = true;
  f->status = status;
  ucp_request_free(request);
}

void on_recv_flag(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user_data) {
  auto* f = static_cast<Flag*>(user_data);
  f->done = true;
  f->status = status;
  if (status == UCS_OK && info != nullptr) {
    f->tag = info->sender_tag;
    f->length = info->length;
  }
  ucp_request_free(request);
}

// Counts completed sends of a bw round (many in flight, only the count matters).
struct SendCounter {
  std::uint64_t completed = 0;
  ucs_status_t error = UCS_OK;
};

void on_send_count(void* request, ucs_status_t status, void* user_data) {
  auto* c = static_cast<SendCounter*>(user_data);
  ++c->completed;
  if (status != UCS_OK) c->error = status;
  ucp_request_free(request);
}

// One posted bw receive; `owner` collects finished slots in order of completion.
struct RecvSlot;
struct RecvQueue {
  std::vector<RecvSlot*> finished;
};
struct RecvSlot {
  RecvQueue* owner = nullptr;
  void* request = nullptr;  // set while UCX holds it
  ucs_status_t status = UCS_OK;
};

void on_recv_slot(void* request, ucs_status_t status, const ucp_tag_recv_info_t*, void* user_data) {
  auto* s = static_cast<RecvSlot*>(user_data);
  s->status = status;
  s->request = nullptr;
  s->owner->finished.push_back(s);
  ucp_request_free(request);
}

}  // namespace

struct UcxEngine::State {
  std::unique_ptr<tx::UcpContext> context;
  std::unique_ptr<tx::UcpWorker> worker;
  ucp_ep_h endpoint = nullptr;
  ucs_memory_type_t memory_type = UCS_MEMORY_TYPE_HOST;

  ucp_worker_h w() const { return worker->get(); }

  ucp_request_param_t send_param(ucp_send_nbx_callback_t cb, void* user_data) const {
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    p.cb.send = cb;
    p.user_data = user_data;
    set_memory_type(p, memory_type);
    return p;
  }
  ucp_request_param_t recv_param(ucp_tag_recv_nbx_callback_t cb, void* user_data, ucp_tag_recv_info_t* info) const {
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_RECV_INFO;
    p.cb.recv = cb;
    p.user_data = user_data;
    set_memory_type(p, memory_type);
    p.recv_info.tag_info = info;
    return p;
  }

  // Control messages (END, ACK) live in host memory whatever --mem says.
  ucp_request_param_t host_send_param(Flag* f) const {
    ucp_request_param_t p = send_param(on_send_flag, f);
    set_memory_type(p, UCS_MEMORY_TYPE_HOST);
    return p;
  }

  // CUDA buffers are declared (UCX skips detecting them); host buffers are left to UCX, as
  // ucx_perftest does: declaring them changes UCX 1.13's multi-lane rendezvous over TCP, which
  // then stalls in ping-pong (found by `lat -s 1M` with tcp/lo + tcp/eth0).
  static void set_memory_type(ucp_request_param_t& p, ucs_memory_type_t type) {
    if (type == UCS_MEMORY_TYPE_HOST) {
      p.op_attr_mask &= ~static_cast<std::uint32_t>(UCP_OP_ATTR_FIELD_MEMORY_TYPE);
      return;
    }
    p.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMORY_TYPE;
    p.memory_type = type;
  }

  // Posts a send completing `f`; false (and f->status) on an immediate error.
  Status send_flag(const void* data, std::size_t length, ucp_tag_t tag, Flag* f, const ucp_request_param_t& p) {
    const ucs_status_ptr_t r = ucp_tag_send_nbx(endpoint, data, length, tag, &p);
    if (r == nullptr) {
      f->done = true;
    } else if (tx::ptr_is_error(r)) {
      return tx::ucs_error(StatusCode::kPeerFailure, "UCX send failed", tx::ptr_status(r));
    }
    return Status::ok();
  }

  Status recv_flag(void* data, std::size_t length, ucp_tag_t tag, ucp_tag_t mask, Flag* f, ucp_tag_recv_info_t* info,
                   bool host) {
    ucp_request_param_t p = recv_param(on_recv_flag, f, info);
    if (host) set_memory_type(p, UCS_MEMORY_TYPE_HOST);
    const ucs_status_ptr_t r = ucp_tag_recv_nbx(w(), data, length, tag, mask, &p);
    if (r == nullptr) {
      f->done = true;
      f->tag = info->sender_tag;
      f->length = info->length;
    } else if (tx::ptr_is_error(r)) {
      return tx::ucs_error(StatusCode::kPeerFailure, "UCX receive failed", tx::ptr_status(r));
    }
    return Status::ok();
  }
};

namespace {

// Deadline checks cost a clock read: do one every 64 idle progress calls.
class Watchdog {
 public:
  explicit Watchdog(Deadline deadline) : deadline_(deadline) {}
  bool expired() { return (++spins_ & 63u) == 0 && Clock::now() > deadline_; }

 private:
  Deadline deadline_;
  unsigned spins_ = 0;
};

Status timeout(const char* what) {
  return Status(StatusCode::kTimeout,
                fmt::format("{}: the peer stopped answering before the deadline (--timeout)", what));
}

Status ucx_failed(const char* what, ucs_status_t status) {
  return tx::ucs_error(StatusCode::kPeerFailure, what, status);
}

}  // namespace

UcxEngine::UcxEngine(std::unique_ptr<State> state) : state_(std::move(state)) {}

UcxEngine::~UcxEngine() {
  if (state_ && state_->endpoint != nullptr) (void)close(deadline_in(1.0));
}

Result<std::unique_ptr<UcxEngine>> UcxEngine::create(MemoryKind memory) {
  TERN_ASSIGN_OR_RETURN(tx::UcpConfig config, tx::UcpConfig::read());
  auto state = std::make_unique<State>();
  TERN_ASSIGN_OR_RETURN(state->context, tx::UcpContext::create(config, 1));
  if (memory == MemoryKind::kCuda) {
    if (!state->context->cuda_memory())
      return unavailable(
          fmt::format("--mem cuda: UCX {} reports no CUDA memory support (built without CUDA, or no GPU driver); "
                      "install a UCX built --with-cuda",
                      tx::UcpContext::version()));
    state->memory_type = UCS_MEMORY_TYPE_CUDA;
  }
  TERN_ASSIGN_OR_RETURN(state->worker, tx::UcpWorker::create(*state->context));
  return std::unique_ptr<UcxEngine>(new UcxEngine(std::move(state)));
}

const std::vector<std::byte>& UcxEngine::address() const { return state_->worker->address(); }

std::string UcxEngine::ucx_version() { return tx::UcpContext::version(); }

Status UcxEngine::connect(const std::vector<std::byte>& peer_address) {
  if (state_->endpoint != nullptr) return internal_error("UcxEngine::connect called twice");
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
  params.address = reinterpret_cast<const ucp_address_t*>(peer_address.data());
  ucp_ep_h ep = nullptr;
  if (const ucs_status_t s = ucp_ep_create(state_->w(), &params, &ep); s != UCS_OK)
    return tx::ucs_error(StatusCode::kUnavailable, "cannot reach the peer's UCX worker (ucp_ep_create)", s);
  state_->endpoint = ep;
  return Status::ok();
}

std::vector<std::string> UcxEngine::transports() const {
  if (state_->endpoint == nullptr) return {};
  char* text = nullptr;
  std::size_t length = 0;
  FILE* stream = open_memstream(&text, &length);
  if (stream == nullptr) return {};
  ucp_ep_print_info(state_->endpoint, stream);
  std::fclose(stream);
  const std::string info(text, length);
  std::free(text);
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const tx::Lane& lane : tx::parse_lanes(info))
    if (seen.insert(lane.transport).second) out.push_back(lane.transport);
  return out;
}

Result<BwSideResult> UcxEngine::bw(const BwRound& round, void* send_buffer, void* recv_buffer, Deadline deadline) {
  State& st = *state_;
  ucp_worker_h worker = st.w();
  Watchdog watchdog(deadline);
  const bool by_time = round.iterations == 0;

  // --- sending half
  SendCounter sent;
  std::uint64_t posted = 0;
  bool sending = round.send;
  bool end_posted = false;
  std::uint64_t end_count = 0;  // END's payload: must outlive the send
  Flag end_sent, ack;
  std::uint64_t ack_payload = 0;
  ucp_tag_recv_info_t ack_info{};
  BwSideResult result;
  // MULTI_SEND: many operations in flight, optimize for bandwidth (as ucx_perftest's bw tests ask).
  ucp_request_param_t data_param = st.send_param(on_send_count, &sent);
  data_param.op_attr_mask |= UCP_OP_ATTR_FLAG_MULTI_SEND;
  const ucp_request_param_t end_param = st.host_send_param(&end_sent);

  // --- receiving half
  RecvQueue queue;
  std::vector<RecvSlot> slots(round.receive ? round.window : 0);
  std::uint64_t recv_posted = 0, recv_done = 0;
  bool peer_end = false;
  std::uint64_t peer_count = 0;
  Flag end_recv, ack_sent;
  ucp_tag_recv_info_t end_info{};
  std::uint64_t ack_out = 0;
  bool ack_posted = false;
  bool cancelled = false;
  const ucp_request_param_t slot_param = [&] {
    ucp_request_param_t p = st.recv_param(on_recv_slot, nullptr, nullptr);
    p.op_attr_mask &= ~static_cast<std::uint32_t>(UCP_OP_ATTR_FIELD_RECV_INFO);
    p.op_attr_mask |= UCP_OP_ATTR_FLAG_MULTI_SEND;
    return p;
  }();
  const ucp_request_param_t ack_param = st.host_send_param(&ack_sent);

  auto post_slot = [&](RecvSlot* slot) -> Status {
    ucp_request_param_t p = slot_param;
    p.user_data = slot;
    const ucs_status_ptr_t r = ucp_tag_recv_nbx(worker, recv_buffer, round.bytes, kTagData, kMaskExact, &p);
    ++recv_posted;
    if (r == nullptr) {
      queue.finished.push_back(slot);  // completed at once: handled like any completion
      slot->status = UCS_OK;
    } else if (tx::ptr_is_error(r)) {
      return ucx_failed("UCX receive failed", tx::ptr_status(r));
    } else {
      slot->request = r;
    }
    return Status::ok();
  };
  // Receives to keep posted: the known count (identical options on both sides), else unbounded.
  auto want_more = [&] { return by_time ? !peer_end : recv_posted < round.iterations; };

  if (round.receive) {
    TERN_CHECK(st.recv_flag(&peer_count, sizeof peer_count, kTagEnd, kMaskExact, &end_recv, &end_info, true));
    for (RecvSlot& slot : slots) {
      slot.owner = &queue;
      if (want_more()) TERN_CHECK(post_slot(&slot));
    }
  }
  if (round.send)
    TERN_CHECK(st.recv_flag(&ack_payload, sizeof ack_payload, kTagAck, kMaskExact, &ack, &ack_info, true));

  // Checkpoints for the peak: every 1/32 of the messages, or of the duration.
  const std::uint64_t mark_step = by_time ? 0 : std::max<std::uint64_t>(1, round.iterations / 32);
  std::uint64_t next_mark = mark_step;
  const double time_step = by_time ? round.duration_s / 32 : 0;
  double next_time = time_step;
  std::uint64_t recv_next_mark = mark_step;
  double recv_next_time = time_step;

  const Clock::time_point t0 = Clock::now();
  const Clock::time_point stop_at =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(round.duration_s));
  if (round.send) result.checkpoints.push_back({0, 0.0});
  bool send_done = !round.send;
  bool recv_finished = !round.receive;

  while (!send_done || !recv_finished) {
    // Post sends up to the window.
    if (sending) {
      while (posted - sent.completed < round.window) {
        if (by_time ? (posted % round.window == 0 && Clock::now() >= stop_at) : posted == round.iterations) {
          sending = false;
          break;
        }
        const ucs_status_ptr_t r = ucp_tag_send_nbx(st.endpoint, send_buffer, round.bytes, kTagData, &data_param);
        ++posted;
        if (r == nullptr) {
          ++sent.completed;
        } else if (tx::ptr_is_error(r)) {
          return ucx_failed("UCX send failed", tx::ptr_status(r));
        }
      }
    }
    const unsigned events = ucp_worker_progress(worker);
    if (sent.error != UCS_OK) return ucx_failed("UCX send failed", sent.error);

    if (round.send && !send_done) {
      if (by_time ? time_step > 0 && seconds_since(t0) >= next_time : sent.completed >= next_mark) {
        result.checkpoints.push_back({sent.completed, seconds_since(t0)});
        if (by_time)
          next_time += time_step;
        else
          next_mark += mark_step;
      }
      if (!sending && !end_posted && sent.completed == posted) {
        end_count = posted;
        TERN_CHECK(st.send_flag(&end_count, sizeof end_count, kTagEnd, &end_sent, end_param));
        end_posted = true;
      }
      if (end_posted && end_sent.done && ack.done) {
        if (end_sent.status != UCS_OK) return ucx_failed("UCX send (END) failed", end_sent.status);
        if (ack.status != UCS_OK) return ucx_failed("UCX receive (ACK) failed", ack.status);
        result.seconds = seconds_since(t0);
        result.messages = posted;
        send_done = true;
      }
    }

    if (round.receive && !recv_finished) {
      while (!queue.finished.empty()) {
        RecvSlot* slot = queue.finished.back();
        queue.finished.pop_back();
        if (slot->status == UCS_ERR_CANCELED && cancelled) continue;  // a spare receive, not a message
        if (slot->status != UCS_OK) return ucx_failed("UCX receive failed", slot->status);
        ++recv_done;
        if (recv_done == 1 || (by_time ? seconds_since(t0) >= recv_next_time : recv_done >= recv_next_mark)) {
          result.recv_checkpoints.push_back({recv_done, seconds_since(t0)});
          if (recv_done > 1) {
            if (by_time)
              recv_next_time += time_step;
            else
              recv_next_mark += mark_step;
          }
        }
        if (want_more()) TERN_CHECK(post_slot(slot));
      }
      if (end_recv.done && !peer_end) {
        if (end_recv.status != UCS_OK) return ucx_failed("UCX receive (END) failed", end_recv.status);
        peer_end = true;
      }
      if (peer_end && recv_done > peer_count)
        return corrupt_data(fmt::format("received {} messages but the peer sent {}", recv_done, peer_count));
      if (peer_end && recv_done == peer_count && !ack_posted) {
        // Spare receives (duration mode) are cancelled before the ACK, so the next round starts clean.
        if (!cancelled) {
          for (RecvSlot& slot : slots)
            if (slot.request != nullptr) ucp_request_cancel(worker, slot.request);
          cancelled = true;
        }
        const bool spare_left =
            std::any_of(slots.begin(), slots.end(), [](const RecvSlot& s) { return s.request != nullptr; });
        if (!spare_left) {
          ack_out = recv_done;
          TERN_CHECK(st.send_flag(&ack_out, sizeof ack_out, kTagAck, &ack_sent, ack_param));
          ack_posted = true;
        }
      }
      if (ack_posted && ack_sent.done) {
        if (ack_sent.status != UCS_OK) return ucx_failed("UCX send (ACK) failed", ack_sent.status);
        recv_finished = true;
      }
    }
    if (events == 0 && watchdog.expired()) return timeout("bw round");
  }
  return result;
}

Result<std::vector<double>> UcxEngine::lat_initiator(std::size_t bytes, std::uint64_t iterations, double duration_s,
                                                     void* send_buffer, void* recv_buffer, Deadline deadline) {
  State& st = *state_;
  ucp_worker_h worker = st.w();
  Watchdog watchdog(deadline);
  std::vector<double> samples;
  samples.reserve(iterations > 0 ? iterations : 1u << 20);
  Flag recv, send;
  ucp_tag_recv_info_t info{};
  const ucp_request_param_t sp = st.send_param(on_send_flag, &send);
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  for (std::uint64_t i = 0;; ++i) {
    if (iterations > 0 ? i == iterations : Clock::now() >= stop_at) break;
    recv = Flag{};
    send = Flag{};
    const Clock::time_point t = Clock::now();
    TERN_CHECK(st.recv_flag(recv_buffer, bytes, kTagData, kMaskExact, &recv, &info, false));
    TERN_CHECK(st.send_flag(send_buffer, bytes, kTagData, &send, sp));
    while (!recv.done || !send.done) {
      if (ucp_worker_progress(worker) == 0 && watchdog.expired()) return timeout("lat round");
    }
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t).count() / 2;
    if (recv.status != UCS_OK) return ucx_failed("UCX receive (pong) failed", recv.status);
    if (send.status != UCS_OK) return ucx_failed("UCX send (ping) failed", send.status);
    samples.push_back(us);
  }
  Flag end;
  TERN_CHECK(st.send_flag(nullptr, 0, kTagEnd, &end, st.host_send_param(&end)));
  while (!end.done)
    if (ucp_worker_progress(worker) == 0 && watchdog.expired()) return timeout("lat END");
  if (end.status != UCS_OK) return ucx_failed("UCX send (END) failed", end.status);
  return samples;
}

Status UcxEngine::lat_responder(std::size_t bytes, void* send_buffer, void* recv_buffer, Deadline deadline) {
  State& st = *state_;
  ucp_worker_h worker = st.w();
  Watchdog watchdog(deadline);
  Flag recv, send;
  ucp_tag_recv_info_t info{};
  const ucp_request_param_t sp = st.send_param(on_send_flag, &send);
  for (;;) {
    recv = Flag{};
    TERN_CHECK(st.recv_flag(recv_buffer, bytes, kTagData, kMaskDataOrEnd, &recv, &info, false));
    while (!recv.done)
      if (ucp_worker_progress(worker) == 0 && watchdog.expired()) return timeout("lat responder");
    if (recv.status != UCS_OK) return ucx_failed("UCX receive (ping) failed", recv.status);
    if (recv.tag == kTagEnd) return Status::ok();
    send = Flag{};
    TERN_CHECK(st.send_flag(send_buffer, bytes, kTagData, &send, sp));
    while (!send.done)
      if (ucp_worker_progress(worker) == 0 && watchdog.expired()) return timeout("lat responder");
    if (send.status != UCS_OK) return ucx_failed("UCX send (pong) failed", send.status);
  }
}

Status UcxEngine::close(Deadline deadline) {
  State& st = *state_;
  if (st.endpoint == nullptr) return Status::ok();
  ucp_request_param_t p{};
  const ucs_status_ptr_t r = ucp_ep_close_nbx(st.endpoint, &p);
  st.endpoint = nullptr;
  if (r == nullptr) return Status::ok();
  if (tx::ptr_is_error(r))
    return tx::ucs_error(StatusCode::kPeerFailure, "closing the UCX endpoint", tx::ptr_status(r));
  while (ucp_request_check_status(r) == UCS_INPROGRESS) {
    ucp_worker_progress(st.w());
    if (Clock::now() > deadline) return Status(StatusCode::kTimeout, "closing the UCX endpoint timed out");
  }
  ucp_request_free(r);
  return Status::ok();
}

}  // namespace tern::ibbench
