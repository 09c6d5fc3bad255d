// Which of tern's UCX defaults (ucx_env_defaults(), in the public header) apply to one context:
// a default is skipped when the environment (UCX_<NAME>) or UcxOptions::config already sets it,
// or when it cannot matter (MM_ERROR_HANDLING when UCX_TLS excludes shared memory: UCX would warn
// "invalid configuration" for a setting no selected transport reads).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tern/transport/ucx.h"

namespace tern::transport::ucx {

/// Looks up an environment variable ("UCX_TLS"); nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The process environment (getenv).
std::optional<std::string> process_env(std::string_view name);

/// Whether a UCX_TLS value can select a shared-memory transport ("" means UCX's default, all).
bool tls_may_use_shared_memory(std::string_view tls);

/// The defaults to apply, in table order.
std::vector<UcxSetting> defaults_to_apply(const UcxOptions& options, const EnvLookup& env);

/// Case-insensitive comparison of UCX setting names.
bool same_setting_name(std::string_view a, std::string_view b);

}  // namespace tern::transport::ucx
