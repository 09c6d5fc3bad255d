// The table behind ternd's configuration (config.h): one row per setting. Everything that names a
// setting (TOML parsing, environment, flags, --dump-config, the example file, the docs table) is
// generated from these rows, so adding a setting is one row plus its DaemonConfig field.
//
// Thread safety: the table is immutable static data; every function here is reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "tern/common/status.h"
#include "tern/daemon/config.h"

namespace tern::daemon {

enum class ConfigType : std::uint8_t {
  kString,        ///< free text, checked by the row's `check`
  kUnsigned,      ///< integer in [min, max]
  kBytes,         ///< integer bytes or "<n>KiB|MiB|GiB|TiB" in [min, max]
  kMilliseconds,  ///< integer milliseconds in [min, max] (keys end in _ms)
  kChoice,        ///< one of `choices`
};

/// A setting's value: text for kString/kChoice, a number for the others.
using ConfigValue = std::variant<std::uint64_t, std::string>;

struct ConfigEntry {
  std::string_view key;   ///< TOML "section.name"
  std::string_view env;   ///< environment variable, TERN_*
  std::string_view flag;  ///< command-line flag, "--kebab-case"
  ConfigType type;
  std::uint64_t min;          ///< numeric types: smallest allowed value
  std::uint64_t max;          ///< numeric types: largest allowed value
  std::string_view choices;   ///< kChoice: allowed values separated by '|'; kString: what
                              ///< `check` accepts, in words (for --help and the docs)
  std::string_view doc;       ///< one line for --help, --dump-config and the docs
  ConfigValue (*get)(const DaemonConfig&);
  void (*set)(DaemonConfig&, const ConfigValue&);
  /// kString: extra validation of a value (nullptr: anything). The message says what is allowed.
  Status (*check)(std::string_view value);
};

/// Every setting, in the order of the dumped file (grouped by section).
std::span<const ConfigEntry> daemon_config_table();

/// Parses `text` (from the environment or a flag) as a value of `entry`. The error message names
/// the key and the allowed values, not the source (the caller knows it).
Result<ConfigValue> parse_config_text(const ConfigEntry& entry, std::string_view text);

/// Checks a value against the entry's range, choices or check function.
Status check_config_value(const ConfigEntry& entry, const ConfigValue& value);

/// The value as TOML ("\"/run/tern/ternd.sock\"", "30000", "\"64GiB\"").
std::string format_config_toml(const ConfigEntry& entry, const ConfigValue& value);

/// What is allowed, in words ("1 .. 65536", "trace | debug | info | warn | error", "absolute path").
std::string describe_allowed(const ConfigEntry& entry);

/// The Markdown table of every setting for docs/configuration.md (key, env, flag, default,
/// allowed, meaning), header row included.
std::string config_docs_markdown();

}  // namespace tern::daemon
