// Peer failure and shutdown: the paths where operations end without their message.
//
// UCX facts this relies on (UCX 1.13, checked by the tests):
//  - A failed endpoint completes the send requests (and rendezvous receives) that use it with an
//    error, and calls the endpoint's error callback; a receive posted for a message the dead peer
//    never sent is not tied to any endpoint and never completes: it must be cancelled
//    (ucp_request_cancel), which completes it with UCS_ERR_CANCELED.
//  - Sends cannot be cancelled. Closing the endpoint with UCP_EP_CLOSE_FLAG_FORCE makes UCX
//    complete every request still using it and stop touching their buffers; after an error it is
//    the only way to close (a flush would need the dead peer).
// So failing a peer = force-close its endpoint, cancel its receives, then report every operation
// still pending with it. The user may free the buffers from the callbacks that follow; requests
// UCX releases later only come back to OpTable (their Op outlives them), never to the user.
#include <cstdio>

#include "transport_core.h"
#include "ucs_status.h"

namespace tern::transport::ucx {

void TransportCore::on_endpoint_error(int peer, ucs_status_t status) {
  // Inside a UCX call: only record it; settle() acts on it once UCX has returned.
  endpoint_errors_.emplace_back(peer, status);
}

Status TransportCore::peer_failure(int peer, ucs_status_t status) const {
  return Status(StatusCode::kPeerFailure, peer_name(peer) + " failed: " + ucs_text(status));
}

Status TransportCore::shutdown_status(const Op& op) const {
  return unavailable("transport shut down before the " + describe(op) + " completed");
}

void TransportCore::fail(int peer, Status why) {
  Peer& p = peers_[static_cast<std::size_t>(peer)];
  if (shutting_down_) {
    // An endpoint error while closing: nothing to report (shut_down() reports), but an endpoint
    // that is still open must now be forced.
    if (p.endpoint != nullptr && p.endpoint->is_open()) closing_.add(p.endpoint->close(CloseMode::kForce));
    return;
  }
  if (!p.failure.is_ok()) return;  // the first reason stands
  p.failure = std::move(why);
  if (p.endpoint != nullptr && p.endpoint->is_open()) closing_.add(p.endpoint->close(CloseMode::kForce));
  cancel_receives(peer);
  for (Op* op : ops_.unreported(peer)) {
    // UCX finished these successfully (or found them truncated) before the failure was known:
    // settle() reports their real outcome.
    const bool settled =
        op->request == nullptr && (op->ucx_status == UCS_OK || op->ucx_status == UCS_ERR_MESSAGE_TRUNCATED);
    if (settled) continue;
    ops_.mark_reported(op);
    queue(std::move(op->done), {p.failure, 0});
  }
}

void TransportCore::cancel_receives(int peer) {
  for (Op* op : ops_.unreported(peer)) {
    // A receive still waiting for its message; one already matched (a rendezvous in progress) is
    // not affected, and ends with its endpoint.
    if (op->kind == OpKind::kRecv && op->request != nullptr) ucp_request_cancel(local_->worker->get(), op->request);
  }
}

void TransportCore::wait_briefly(std::chrono::steady_clock::time_point deadline) {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) return;
  auto armed = local_->worker->arm();
  if (!armed.is_ok() || !*armed) return;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
  (void)events_->wait(local_->worker->event_fd(), std::min(left, std::chrono::milliseconds(10)));
}

// Completes every pending operation ("transport shut down", or its real outcome if UCX finishes it
// meanwhile), closes the endpoints and destroys the worker, then the context.
void TransportCore::shut_down() {
  shutting_down_ = true;
  // Receives can be cancelled; sends cannot: an endpoint with sends in flight is forced (its peer
  // is not taking them), the others are flushed so that messages already reported sent arrive.
  for (int peer = 0; peer < size(); ++peer) {
    if (peer != rank_) cancel_receives(peer);
  }
  for (int peer = 0; peer < size(); ++peer) {
    Peer& p = peers_[static_cast<std::size_t>(peer)];
    if (p.endpoint == nullptr || !p.endpoint->is_open()) continue;
    bool sending = false;
    for (const Op* op : ops_.unreported(peer)) {
      sending = sending || (op->kind == OpKind::kSend && op->request != nullptr);
    }
    closing_.add(p.endpoint->close(sending ? CloseMode::kForce : CloseMode::kFlush));
  }
  const auto deadline = std::chrono::steady_clock::now() + local_->options.close_timeout;
  for (;;) {
    drive();
    if (ops_.attached_count() == 0 && closing_.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    wait_briefly(deadline);
  }
  // Whatever UCX still holds after the deadline: report it and let UCX finish it on its own.
  for (Op* op : ops_.attached()) {
    std::fprintf(stderr, "tern ucx: UCX did not release the %s within the close timeout\n", describe(*op).c_str());
    if (!op->reported) {
      ops_.mark_reported(op);
      queue(std::move(op->done), {shutdown_status(*op), 0});
    }
    ops_.orphan(op);
  }
  closing_.release_all();
  for (int peer = 0; peer < size(); ++peer) {
    for (Op* op : ops_.unreported(peer)) {  // none expected: every Op left was attached
      ops_.mark_reported(op);
      queue(std::move(op->done), {shutdown_status(*op), 0});
      ops_.release_if_finished(op);
    }
  }
  // Callbacks may call fail_peer() or post (which now fails synchronously): nothing queues more.
  while (!ready_.empty()) run_ready();
  for (Peer& p : peers_) p.endpoint.reset();
  local_.reset();
}

}  // namespace tern::transport::ucx
