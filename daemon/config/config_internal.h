// Shared by the configuration's translation units; not installed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tern/daemon/config.h"

namespace tern::daemon {

/// Per table row (same index): where its value came from ("default", "file:line",
/// "environment TERN_X", "flag --x"), for messages about settings that conflict.
using ConfigSources = std::vector<std::string>;

ConfigSources default_sources();

/// Applies the TOML text over `base`, recording the file:line of every value set in `sources`.
Result<DaemonConfig> apply_toml(std::string_view text, std::string_view source_name, const DaemonConfig& base,
                                ConfigSources& sources);

/// validate_daemon_config() with the origin of each value named in its messages.
Status validate_with_sources(const DaemonConfig& config, const ConfigSources& sources);

}  // namespace tern::daemon
