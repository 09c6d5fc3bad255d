#include "ucp_worker.h"

#include <cstring>

#include "ucs_status.h"

namespace tern::transport::ucx {

Result<std::unique_ptr<UcpWorker>> UcpWorker::create(const UcpContext& context) {
  ucp_worker_params_t params{};
  params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  params.thread_mode = UCS_THREAD_MODE_SINGLE;
  ucp_worker_h worker = nullptr;
  ucs_status_t status = ucp_worker_create(context.get(), &params, &worker);
  if (status != UCS_OK) return ucs_error(StatusCode::kUnavailable, "cannot create a UCX worker", status);

  ucp_address_t* raw = nullptr;
  std::size_t length = 0;
  status = ucp_worker_get_address(worker, &raw, &length);
  if (status != UCS_OK) {
    ucp_worker_destroy(worker);
    return ucs_error(StatusCode::kUnavailable, "cannot get the UCX worker's address", status);
  }
  std::vector<std::byte> address(length);
  std::memcpy(address.data(), raw, length);
  ucp_worker_release_address(worker, raw);

  int fd = -1;
  status = ucp_worker_get_efd(worker, &fd);
  if (status != UCS_OK) {
    ucp_worker_destroy(worker);
    return ucs_error(StatusCode::kUnavailable, "cannot get the UCX worker's event fd", status);
  }
  return std::unique_ptr<UcpWorker>(new UcpWorker(worker, std::move(address), fd));
}

UcpWorker::~UcpWorker() { ucp_worker_destroy(worker_); }

Result<bool> UcpWorker::arm() {
  const ucs_status_t status = ucp_worker_arm(worker_);
  if (status == UCS_OK) return true;
  if (status == UCS_ERR_BUSY) return false;
  return ucs_error(StatusCode::kInternal, "cannot arm the UCX worker's event fd", status);
}

}  // namespace tern::transport::ucx
