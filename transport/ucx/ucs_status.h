// Helpers between UCX's ucs_status_t / ucs_status_ptr_t and tern's Status (the UCS_PTR_* macros
// are C casts, which tern's warnings reject).
#pragma once

#include <ucp/api/ucp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "tern/common/status.h"

namespace tern::transport::ucx {

/// True when an _nbx call returned an error code instead of NULL or a request.
inline bool ptr_is_error(ucs_status_ptr_t ptr) noexcept {
  return reinterpret_cast<std::uintptr_t>(ptr) >= static_cast<std::uintptr_t>(UCS_ERR_LAST);
}

/// The error code inside an error pointer (precondition: ptr_is_error(ptr)).
inline ucs_status_t ptr_status(ucs_status_ptr_t ptr) noexcept {
  return static_cast<ucs_status_t>(reinterpret_cast<std::intptr_t>(ptr));
}

/// "Connection reset by remote peer": UCX's text for a status.
inline std::string ucs_text(ucs_status_t status) { return ucs_status_string(status); }

/// Status `code` with message "<what>: <UCX's text> (UCX status <n>)".
Status ucs_error(StatusCode code, std::string_view what, ucs_status_t status);

}  // namespace tern::transport::ucx
