#include "ucs_status.h"

namespace tern::transport::ucx {

Status ucs_error(StatusCode code, std::string_view what, ucs_status_t status) {
  std::string message(what);
  message += ": ";
  message += ucs_status_string(status);
  message += " (UCX status ";
  message += std::to_string(static_cast<int>(status));
  message += ")";
  return Status(code, std::move(message));
}

}  // namespace tern::transport::ucx
