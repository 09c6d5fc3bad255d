// RAII for ucp_config_t: the UCX configuration read from the environment, then modified.
#pragma once

#include <ucp/api/ucp.h>

#include <string_view>

#include "tern/common/status.h"

namespace tern::transport::ucx {

class UcpConfig {
 public:
  /// ucp_config_read: UCX's defaults overlaid with the UCX_* environment.
  static Result<UcpConfig> read();

  UcpConfig(UcpConfig&& other) noexcept : config_(other.config_) { other.config_ = nullptr; }
  UcpConfig& operator=(UcpConfig&& other) noexcept;
  UcpConfig(const UcpConfig&) = delete;
  UcpConfig& operator=(const UcpConfig&) = delete;
  ~UcpConfig();

  /// ucp_config_modify(NAME, value); NAME without "UCX_". UCX accepts names it does not know here
  /// and warns about them when the worker is created.
  Status modify(std::string_view name, std::string_view value);

  const ucp_config_t* get() const noexcept { return config_; }

 private:
  explicit UcpConfig(ucp_config_t* config) noexcept : config_(config) {}
  ucp_config_t* config_;
};

}  // namespace tern::transport::ucx
