#include "ucp_context.h"

#include "ucs_status.h"

namespace tern::transport::ucx {

Result<std::unique_ptr<UcpContext>> UcpContext::create(const UcpConfig& config, std::size_t estimated_endpoints) {
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
  if (estimated_endpoints > 0) {
    params.field_mask |= UCP_PARAM_FIELD_ESTIMATED_NUM_EPS;
    params.estimated_num_eps = estimated_endpoints;
  }
  ucp_context_h context = nullptr;
  const ucs_status_t status = ucp_init(&params, config.get(), &context);
  if (status != UCS_OK) return ucs_error(StatusCode::kUnavailable, "cannot initialize UCX (ucp_init)", status);

  ucp_context_attr_t attr{};
  attr.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES;
  const ucs_status_t query = ucp_context_query(context, &attr);
  if (query != UCS_OK) {
    ucp_cleanup(context);
    return ucs_error(StatusCode::kUnavailable, "cannot query the UCX context (ucp_context_query)", query);
  }
  const bool cuda = (attr.memory_types & (std::uint64_t{1} << UCS_MEMORY_TYPE_CUDA)) != 0;
  return std::unique_ptr<UcpContext>(new UcpContext(context, cuda));
}

UcpContext::~UcpContext() { ucp_cleanup(context_); }

std::string UcpContext::version() { return ucp_get_version_string(); }

}  // namespace tern::transport::ucx
