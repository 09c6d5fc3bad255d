// The endpoint-close requests still in flight: each is checked after worker progress and released
// (ucp_request_free) exactly once, when UCX has finished with it or when the tracker gives up.
#pragma once

#include <vector>

namespace tern::transport::ucx {

class CloseTracker {
 public:
  CloseTracker() = default;
  CloseTracker(const CloseTracker&) = delete;
  CloseTracker& operator=(const CloseTracker&) = delete;
  /// Releases the requests still in flight; UCX completes them on its own.
  ~CloseTracker() { release_all(); }

  /// Tracks a request from UcpEndpoint::close (nullptr is ignored).
  void add(void* request);
  /// Releases the requests UCX has completed.
  void poll();
  bool empty() const noexcept { return requests_.empty(); }
  void release_all() noexcept;

 private:
  std::vector<void*> requests_;
};

}  // namespace tern::transport::ucx
