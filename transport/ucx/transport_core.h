// The implementation behind UcxTransport (see tern/transport/ucx.h for the contract).
//
// Where things happen:
//  - transport_core.cc: creation, posting (send/recv), progress and the completion queue;
//  - transport_failure.cc: peer failure (UCX endpoint errors, fail_peer) and shutdown.
//
// Every user callback runs from run_ready(), outside any UCX call: UCX callbacks (request
// completions, endpoint errors) only record what happened; settle() turns the records into
// queued completions once UCX has returned.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "close_tracker.h"
#include "event_wait.h"
#include "local_state.h"
#include "op_table.h"
#include "tern/transport/ucx.h"
#include "ucp_endpoint.h"

namespace tern::transport::ucx {

class TransportCore final : private EndpointErrorSink {
 public:
  static Result<std::unique_ptr<TransportCore>> create(std::unique_ptr<LocalState> local, int rank,
                                                       std::vector<std::vector<std::byte>> addresses,
                                                       std::vector<std::string> peer_names);
  TransportCore(const TransportCore&) = delete;
  TransportCore& operator=(const TransportCore&) = delete;
  ~TransportCore();

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return static_cast<int>(peers_.size()); }
  std::string peer_name(int peer) const;
  Capabilities capabilities() const;
  std::vector<UcxEndpointInfo> endpoint_info() const;

  Status send(int peer, Tag tag, const void* data, std::size_t length, MemoryKind memory, CompletionFn done);
  Status recv(int peer, Tag tag, void* data, std::size_t capacity, MemoryKind memory, CompletionFn done);
  Status progress(std::chrono::milliseconds max_wait);
  void fail_peer(int peer, const Status& reason);
  void wake() noexcept { events_->wake(); }

 private:
  struct Peer {
    std::string name;
    std::unique_ptr<UcpEndpoint> endpoint;  // null for this rank itself
    Status failure;                         // ok while the peer is healthy
  };
  struct Ready {
    CompletionFn done;
    Completion completion;
  };

  TransportCore(std::unique_ptr<LocalState> local, std::unique_ptr<EventWait> events, int rank,
                std::vector<std::string> names);

  // transport_core.cc
  Status check_post(OpKind kind, int peer, Tag tag, const void* data, std::size_t size, MemoryKind memory) const;
  void posted(Op* op, ucs_status_ptr_t result);
  void finish(Op* op);
  void queue(CompletionFn done, Completion completion);
  void drive();
  void settle();
  std::size_t run_ready();
  std::string describe(const Op& op) const;

  // transport_failure.cc
  void on_endpoint_error(int peer, ucs_status_t status) override;
  Status peer_failure(int peer, ucs_status_t status) const;
  Status shutdown_status(const Op& op) const;
  void fail(int peer, Status why);
  void cancel_receives(int peer);
  void shut_down();
  void wait_briefly(std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<LocalState> local_;  // reset last, explicitly, by the destructor
  std::unique_ptr<EventWait> events_;
  int rank_;
  std::vector<Peer> peers_;
  OpTable ops_;
  CloseTracker closing_;
  std::deque<Ready> ready_;
  std::vector<std::pair<int, ucs_status_t>> endpoint_errors_;  // recorded inside UCX calls
  bool shutting_down_ = false;
};

}  // namespace tern::transport::ucx
