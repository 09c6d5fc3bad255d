// RAII for ucp_context_h: tagged messaging plus wake-up (event fd) support.
#pragma once

#include <ucp/api/ucp.h>

#include <cstddef>
#include <memory>
#include <string>

#include "tern/common/status.h"
#include "ucp_config.h"

namespace tern::transport::ucx {

class UcpContext {
 public:
  /// ucp_init with UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP. `estimated_endpoints` (0: unknown) helps
  /// UCX choose between transports that scale differently (RC/DC on InfiniBand).
  static Result<std::unique_ptr<UcpContext>> create(const UcpConfig& config, std::size_t estimated_endpoints);

  UcpContext(const UcpContext&) = delete;
  UcpContext& operator=(const UcpContext&) = delete;
  ~UcpContext();

  ucp_context_h get() const noexcept { return context_; }
  /// UCX reports UCS_MEMORY_TYPE_CUDA among its memory types (built with CUDA, driver present).
  bool cuda_memory() const noexcept { return cuda_memory_; }
  /// "1.13.1", the library loaded at run time.
  static std::string version();

 private:
  UcpContext(ucp_context_h context, bool cuda_memory) noexcept : context_(context), cuda_memory_(cuda_memory) {}
  ucp_context_h context_;
  bool cuda_memory_;
};

}  // namespace tern::transport::ucx
