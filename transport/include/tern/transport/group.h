// Forming a group end to end: the TCP bootstrap authenticates members and assigns ranks, the UCX
// workers' addresses are exchanged through it, and a Communicator runs over the UCX transport.
// Heartbeat failures seen by the bootstrap are forwarded to the communicator, so a stopped or
// partitioned peer fails the running allreduce within the heartbeat timeout instead of its deadline.
//
// Like NCCL: rank 0 hosts the rendezvous (it listens on the unique id's host:port); every member
// is given the same unique id (host:port + secret) by the launcher or the training framework.
//
// Thread safety: a Group is used by one thread (allreduce); destruction joins its threads.
#pragma once

#include <cstddef>
#include <memory>
#include <stop_token>
#include <string>

#include "tern/transport/bootstrap.h"
#include "tern/transport/collective.h"
#include "tern/transport/ucx.h"

namespace tern::transport {

struct GroupOptions {
  BootstrapOptions bootstrap;
  UcxOptions ucx;
  collective::CommunicatorOptions communicator;  ///< seed and group_id are derived from the id if 0
  std::string host_name;                          ///< shown in errors; default: gethostname()
  /// Optional: a stop request ends a form() still waiting for the group (see JoinOptions::cancel).
  std::stop_token cancel;
};

/// Messages up to this size go eagerly (UCX_RNDV_THRESH), unless the caller sets RNDV_THRESH:
/// one compressed pipeline chunk of `options`, at most kMaxEagerChunkBytes.
std::size_t eager_limit(const collective::CommunicatorOptions& options);
inline constexpr std::size_t kMaxEagerChunkBytes = std::size_t{1} << 20;

class Group {
 public:
  /// Joins (rank 0: hosts and joins) the group `id` of `nranks` members as `rank`.
  static Result<std::unique_ptr<Group>> form(const UniqueId& id, int rank, int nranks, const GroupOptions& options = {});
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  collective::Communicator& communicator() { return *communicator_; }
  Bootstrap& bootstrap() { return *bootstrap_; }
  /// Which UCX transports each peer's endpoint uses, e.g. "rank 1 (host b): tcp/eth0".
  std::string describe_transports() const;

 private:
  struct FailureForwarder;
  Group() = default;
  std::shared_ptr<FailureForwarder> forwarder_;
  std::unique_ptr<Bootstrap> bootstrap_;
  std::unique_ptr<collective::Communicator> communicator_;
  const UcxTransport* ucx_ = nullptr;  // owned by the communicator
};

}  // namespace tern::transport
