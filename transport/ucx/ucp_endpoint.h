// RAII for ucp_ep_h: an endpoint to one peer's worker address, error handling mode PEER (UCX
// reports a failed peer through EndpointErrorSink instead of aborting), closed gracefully
// (flush) while healthy and forcibly (UCP_EP_CLOSE_FLAG_FORCE) after an error, when flushing
// would need the dead peer.
#pragma once

#include <ucp/api/ucp.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "tern/common/status.h"
#include "ucp_worker.h"

namespace tern::transport::ucx {

/// Receives endpoint errors. Called from inside ucp_worker_progress (or another UCX call on the
/// worker's thread): record the error and act on it after UCX returns.
class EndpointErrorSink {
 public:
  virtual void on_endpoint_error(int peer, ucs_status_t status) = 0;

 protected:
  ~EndpointErrorSink() = default;
};

enum class CloseMode : std::uint8_t { kFlush, kForce };

class UcpEndpoint {
 public:
  /// ucp_ep_create to `address` (a peer's UcpWorker::address()). `sink` and this object must
  /// outlive the UCX endpoint (until close() and the completion of the request it returns).
  static Result<std::unique_ptr<UcpEndpoint>> create(UcpWorker& worker, std::span<const std::byte> address,
                                                     int peer, EndpointErrorSink* sink);

  UcpEndpoint(const UcpEndpoint&) = delete;
  UcpEndpoint& operator=(const UcpEndpoint&) = delete;
  /// Force-closes an endpoint still open and releases the close request (UCX finishes it).
  ~UcpEndpoint();

  bool is_open() const noexcept { return endpoint_ != nullptr; }
  /// Precondition: is_open().
  ucp_ep_h get() const noexcept { return endpoint_; }

  /// Starts closing (ucp_ep_close_nbx) and gives up the handle. Returns the close request to
  /// progress and release (UCX-owned; see CloseTracker), or nullptr when closing finished at once.
  /// kForce makes UCX complete every request still using the endpoint (with an error status).
  void* close(CloseMode mode) noexcept;

  /// ucp_ep_print_info: the lanes (transport/device per role) and protocol thresholds.
  std::string print_info() const;

 private:
  UcpEndpoint(int peer, EndpointErrorSink* sink) noexcept : peer_(peer), sink_(sink) {}
  static void on_error(void* arg, ucp_ep_h endpoint, ucs_status_t status);

  int peer_;
  EndpointErrorSink* sink_;
  ucp_ep_h endpoint_ = nullptr;
};

}  // namespace tern::transport::ucx
