// UcxTransport: the public class, forwarding to TransportCore.
#include <utility>

#include "local_state.h"
#include "transport_core.h"

namespace tern::transport {

Result<std::unique_ptr<UcxTransport>> UcxTransport::create(UcxLocalWorker local, int rank,
                                                           std::vector<std::vector<std::byte>> addresses,
                                                           std::vector<std::string> peer_names) {
  TERN_ASSIGN_OR_RETURN(auto core, ucx::TransportCore::create(std::move(local.state_), rank, std::move(addresses),
                                                              std::move(peer_names)));
  return std::unique_ptr<UcxTransport>(new UcxTransport(std::move(core)));
}

UcxTransport::UcxTransport(std::unique_ptr<ucx::TransportCore> core) : core_(std::move(core)) {}
UcxTransport::~UcxTransport() = default;

int UcxTransport::rank() const { return core_->rank(); }
int UcxTransport::size() const { return core_->size(); }
std::string UcxTransport::peer_name(int peer) const { return core_->peer_name(peer); }
Capabilities UcxTransport::capabilities() const { return core_->capabilities(); }

Status UcxTransport::send(int peer, Tag tag, const void* data, std::size_t length, MemoryKind memory,
                          CompletionFn done) {
  return core_->send(peer, tag, data, length, memory, std::move(done));
}

Status UcxTransport::recv(int peer, Tag tag, void* data, std::size_t capacity, MemoryKind memory,
                          CompletionFn done) {
  return core_->recv(peer, tag, data, capacity, memory, std::move(done));
}

Status UcxTransport::progress(std::chrono::milliseconds max_wait) { return core_->progress(max_wait); }
void UcxTransport::fail_peer(int peer, const Status& reason) { core_->fail_peer(peer, reason); }
void UcxTransport::wake() { core_->wake(); }
std::vector<UcxEndpointInfo> UcxTransport::endpoint_info() const { return core_->endpoint_info(); }

}  // namespace tern::transport
