#include "ucp_config.h"

#include <string>

#include "ucs_status.h"

namespace tern::transport::ucx {

Result<UcpConfig> UcpConfig::read() {
  ucp_config_t* config = nullptr;
  const ucs_status_t status = ucp_config_read(nullptr, nullptr, &config);
  if (status != UCS_OK) return ucs_error(StatusCode::kUnavailable, "cannot read the UCX configuration", status);
  return UcpConfig(config);
}

UcpConfig& UcpConfig::operator=(UcpConfig&& other) noexcept {
  if (this != &other) {
    if (config_ != nullptr) ucp_config_release(config_);
    config_ = other.config_;
    other.config_ = nullptr;
  }
  return *this;
}

UcpConfig::~UcpConfig() {
  if (config_ != nullptr) ucp_config_release(config_);
}

Status UcpConfig::modify(std::string_view name, std::string_view value) {
  if (name.empty() || name.starts_with("UCX_") || name.starts_with("ucx_")) {
    return invalid_argument("UCX setting name '" + std::string(name) +
                            "': give the name without the UCX_ prefix (\"TLS\", not \"UCX_TLS\")");
  }
  const std::string n(name);
  const std::string v(value);
  const ucs_status_t status = ucp_config_modify(config_, n.c_str(), v.c_str());
  if (status != UCS_OK) {
    return ucs_error(StatusCode::kInvalidArgument, "UCX rejected the setting UCX_" + n + "=" + v, status);
  }
  return Status::ok();
}

}  // namespace tern::transport::ucx
