#include "tern/transport/group.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "tern/kernels/codec.h"

namespace tern::transport {

// The bootstrap reports failures from its own thread, possibly before the communicator exists or
// while it is being destroyed: the forwarder is the one place both sides agree on.
struct Group::FailureForwarder {
  std::mutex mutex;
  collective::Communicator* communicator = nullptr;
  void forward(int rank, const Status& reason) {
    std::lock_guard lock(mutex);
    if (communicator) communicator->notify_peer_failure(rank, reason);
  }
};

namespace {

std::string local_host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

// 64 bits of the group secret: the same on every member, unknown outside the group.
std::uint64_t secret_word(const UniqueId& id, std::size_t word) {
  std::uint64_t v;
  std::memcpy(&v, id.secret().data() + 8 * word, sizeof v);
  return v;
}

// A UCX setting the caller did not choose, neither in the environment (UCX_<NAME>) nor in options.
void set_default(UcxOptions& options, const std::string& name, std::string value) {
  if (std::getenv(("UCX_" + name).c_str()) != nullptr) return;
  if (std::any_of(options.config.begin(), options.config.end(), [&](const UcxSetting& s) { return s.name == name; }))
    return;
  options.config.push_back({name, std::move(value)});
}

}  // namespace

std::size_t eager_limit(const collective::CommunicatorOptions& options) {
  // The largest 2-bit chunk (smallest blocks, so the most scales). Rendezvous costs a handshake
  // per message that needs both processes scheduled; for chunks this small that round trip, not
  // the bytes, set the pace (terngrad 21 MiB on 4 emulated nodes: 31 ms rendezvous vs 26 eager).
  // Larger chunks (fp32, bf16) keep rendezvous: zero-copy on RDMA, and no unexpected-message
  // buffering of big payloads on the receiver.
  const auto compressed = kernels::encoded_size(kernels::Codec::kTernGrad, kernels::kMinBlockSize,
                                                options.pipeline_chunk_elements);
  const std::size_t bytes = compressed.is_ok() ? *compressed : kMaxEagerChunkBytes;
  return std::min(bytes + 1, kMaxEagerChunkBytes);
}

Result<std::unique_ptr<Group>> Group::form(const UniqueId& id, int rank, int nranks, const GroupOptions& options) {
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return invalid_argument("rank " + std::to_string(rank) + " of a group of " + std::to_string(nranks));
  std::unique_ptr<Group> group(new Group());
  group->forwarder_ = std::make_shared<FailureForwarder>();

  UcxOptions ucx_options = options.ucx;
  // Inside a group the bootstrap detects dead members (connection loss) and silent ones
  // (heartbeats), so UCX's keepalive is only a backstop. Its 1 s default was seen to fire
  // "Endpoint timeout" on healthy peers during bulk transfers over rate-limited TCP links.
  set_default(ucx_options, "KEEPALIVE_INTERVAL", "30s");
  set_default(ucx_options, "RNDV_THRESH", std::to_string(eager_limit(options.communicator)));
  TERN_ASSIGN_OR_RETURN(UcxLocalWorker worker, UcxLocalWorker::create(ucx_options));
  JoinOptions join;
  join.rank = rank;
  join.host_name = options.host_name.empty() ? local_host_name() : options.host_name;
  const auto& address = worker.address();
  join.payload.resize(address.size());
  std::memcpy(join.payload.data(), address.data(), address.size());
  join.cancel = options.cancel;
  join.on_peer_failure = [forwarder = group->forwarder_](int peer, const Status& reason) {
    forwarder->forward(peer, reason);
  };
  if (rank == 0) {
    TERN_ASSIGN_OR_RETURN(auto server, BootstrapServer::start(id, nranks, options.bootstrap));
    TERN_ASSIGN_OR_RETURN(group->bootstrap_, Bootstrap::join(std::move(server), std::move(join), options.bootstrap));
  } else {
    TERN_ASSIGN_OR_RETURN(group->bootstrap_, Bootstrap::join(id, std::move(join), options.bootstrap));
  }
  Bootstrap& boot = *group->bootstrap_;
  std::vector<std::vector<std::byte>> addresses;
  std::vector<std::string> names;
  for (int r = 0; r < boot.size(); ++r) {
    const auto& payload = boot.peers()[static_cast<std::size_t>(r)].payload;
    auto& a = addresses.emplace_back(payload.size());
    std::memcpy(a.data(), payload.data(), payload.size());
    names.push_back(boot.peer_name(r));
  }
  TERN_ASSIGN_OR_RETURN(auto ucx, UcxTransport::create(std::move(worker), boot.rank(), std::move(addresses), std::move(names)));
  group->ucx_ = ucx.get();
  collective::CommunicatorOptions copt = options.communicator;
  if (copt.seed == 0) copt.seed = secret_word(id, 0);
  if (copt.group_id == 0) copt.group_id = secret_word(id, 1);
  TERN_ASSIGN_OR_RETURN(group->communicator_, collective::Communicator::create(std::move(ucx), copt));
  {
    std::lock_guard lock(group->forwarder_->mutex);
    group->forwarder_->communicator = group->communicator_.get();
  }
  // Failures the bootstrap saw before the communicator existed.
  for (const FailedPeer& f : boot.failed_peers())
    if (f.rank >= 0) group->communicator_->notify_peer_failure(f.rank, f.reason);
  return group;
}

Group::~Group() {
  if (forwarder_) {
    std::lock_guard lock(forwarder_->mutex);
    forwarder_->communicator = nullptr;
  }
  communicator_.reset();
  if (bootstrap_) (void)bootstrap_->close();
}

std::string Group::describe_transports() const {
  std::string out;
  if (!ucx_) return out;
  for (const UcxEndpointInfo& info : ucx_->endpoint_info()) {
    out += (out.empty() ? "" : "; ") + ucx_->peer_name(info.peer) + ": ";
    for (std::size_t i = 0; i < info.transports.size(); ++i) out += (i ? "," : "") + info.transports[i];
    if (info.failed) out += " (failed)";
  }
  return out;
}

}  // namespace tern::transport
