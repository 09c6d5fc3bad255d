#include "close_tracker.h"

#include <ucp/api/ucp.h>

#include <algorithm>

namespace tern::transport::ucx {

void CloseTracker::add(void* request) {
  if (request != nullptr) requests_.push_back(request);
}

void CloseTracker::poll() {
  std::erase_if(requests_, [](void* request) {
    if (ucp_request_check_status(request) == UCS_INPROGRESS) return false;
    ucp_request_free(request);
    return true;
  });
}

void CloseTracker::release_all() noexcept {
  for (void* request : requests_) ucp_request_free(request);
  requests_.clear();
}

}  // namespace tern::transport::ucx
