#include "ucp_endpoint.h"

#include <cstdio>
#include <cstdlib>

#include "ucs_status.h"

namespace tern::transport::ucx {

Result<std::unique_ptr<UcpEndpoint>> UcpEndpoint::create(UcpWorker& worker, std::span<const std::byte> address,
                                                         int peer, EndpointErrorSink* sink) {
  if (address.empty()) return invalid_argument("empty UCX worker address");
  std::unique_ptr<UcpEndpoint> endpoint(new UcpEndpoint(peer, sink));
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.address = reinterpret_cast<const ucp_address_t*>(address.data());
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = &UcpEndpoint::on_error;
  params.err_handler.arg = endpoint.get();
  const ucs_status_t status = ucp_ep_create(worker.get(), &params, &endpoint->endpoint_);
  if (status != UCS_OK) {
    endpoint->endpoint_ = nullptr;
    return ucs_error(StatusCode::kUnavailable, "cannot create a UCX endpoint", status);
  }
  return endpoint;
}

UcpEndpoint::~UcpEndpoint() {
  if (void* request = close(CloseMode::kForce); request != nullptr) ucp_request_free(request);
}

void UcpEndpoint::on_error(void* arg, ucp_ep_h /*endpoint*/, ucs_status_t status) {
  auto* self = static_cast<UcpEndpoint*>(arg);
  self->sink_->on_endpoint_error(self->peer_, status);
}

void* UcpEndpoint::close(CloseMode mode) noexcept {
  if (endpoint_ == nullptr) return nullptr;
  ucp_request_param_t param{};
  if (mode == CloseMode::kForce) {
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = UCP_EP_CLOSE_FLAG_FORCE;
  }
  const ucs_status_ptr_t request = ucp_ep_close_nbx(endpoint_, &param);
  endpoint_ = nullptr;
  // An error pointer means closing failed but UCX released the endpoint anyway: nothing to track.
  if (request == nullptr || ptr_is_error(request)) return nullptr;
  return request;
}

std::string UcpEndpoint::print_info() const {
  if (endpoint_ == nullptr) return {};
  char* buffer = nullptr;
  std::size_t length = 0;
  FILE* stream = open_memstream(&buffer, &length);
  if (stream == nullptr) return {};
  ucp_ep_print_info(endpoint_, stream);
  std::fclose(stream);
  std::string text(buffer, length);
  std::free(buffer);
  return text;
}

}  // namespace tern::transport::ucx
