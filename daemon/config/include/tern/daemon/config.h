// ternd's configuration: one table of settings, each with a TOML key, an environment variable, a
// command-line flag, a default and a doc line (daemon/config/config_table.cc). Precedence: flag >
// environment > file (/etc/tern/ternd.toml) > default. `ternd --dump-config` prints the effective
// values as a commented TOML file.
//
// The table (config_table.h) drives everything that names a setting: the TOML parser (unknown
// keys are errors, so a typo cannot silently fall back to a default), the environment overrides,
// the CLI11 flags, --dump-config, the example file systemd/ternd.toml.example and the table in
// docs/configuration.md (the last two are checked against it by tests/systemd/ternd_config_test.cc).
//
// Errors name the key, where the bad value came from ("/etc/tern/ternd.toml:7", "environment
// TERN_MAX_CLIENTS", "flag --max-clients") and what is allowed, on one line.
//
// Thread safety: a DaemonConfig is a plain value; load it once at start-up and share it read-only.
// The functions below are reentrant (no global state; the environment is passed in).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tern/common/status.h"

namespace tern::daemon {

struct DaemonConfig {
  // control socket
  std::string socket_path = "/run/tern/ternd.sock";  ///< Unix socket trainers connect to
  std::string socket_group = "";   ///< group owning the socket (mode 0660); empty: the daemon's group
  std::uint32_t max_clients = 256;  ///< connected trainers at once; more are refused with a message
  std::uint64_t max_client_memory_bytes = std::uint64_t{64} << 30;  ///< shared memory per client
  /// After serving a submission, how long (µs) the io thread keeps polling the trainers' rings
  /// before it sleeps in epoll; 0: sleep at once.
  std::uint32_t poll_us = 0;
  // groups and the inter-node transport
  std::string advertise_host = "";  ///< address peers reach this node at; empty: first non-loopback IPv4
  std::uint16_t rendezvous_port = 0;  ///< port of rendezvous this node hosts; 0: ephemeral per group
  std::chrono::milliseconds join_timeout{30'000};   ///< default group formation deadline
  std::chrono::milliseconds op_timeout{30'000};     ///< default allreduce deadline
  std::chrono::milliseconds heartbeat_interval{1'000};
  std::chrono::milliseconds heartbeat_timeout{5'000};
  std::uint32_t pipeline_chunk_elements = 1u << 17;
  std::uint32_t pipeline_window = 4;
  std::uint32_t overlap_ops = 2;  // operations of a group running at once (one trainer per node)
  std::string ucx_tls = "";  ///< UCX_TLS for inter-node traffic; empty: UCX's choice
  // logging
  std::string log_level = "info";  ///< trace, debug, info, warn, error
  /// auto: journal when stderr is the journal (JOURNAL_STREAM), else text; text: timestamped
  /// lines; journal: "<N>" syslog priority prefixes and no timestamps (journald adds its own).
  std::string log_format = "auto";
};

/// The environment variables ternd reads, passed in so that tests need not touch the process's
/// own environment.
class Environment {
 public:
  Environment() = default;
  explicit Environment(std::map<std::string, std::string, std::less<>> vars) : vars_(std::move(vars)) {}
  /// A snapshot of this process's environment (reads `environ`; call before starting threads).
  static Environment from_process();

  std::optional<std::string> get(std::string_view name) const;
  void set(std::string name, std::string value) { vars_[std::move(name)] = std::move(value); }

 private:
  std::map<std::string, std::string, std::less<>> vars_;
};

/// Where the configuration file is looked for when --config is not given. A missing default file
/// means "all defaults"; a missing file named with --config (or TERN_CONFIG) is an error.
inline constexpr std::string_view kDefaultConfigPath = "/etc/tern/ternd.toml";

/// What the command line asked ternd to do.
enum class TerndAction : std::uint8_t {
  kRun,          ///< serve (the default)
  kDumpConfig,   ///< --dump-config: print the effective configuration as TOML, exit 0
  kCheckConfig,  ///< --check-config: load and validate, print "ok" or the error; exit 0 or 1
  kHelp,         ///< --help: print `message`, exit 0
  kVersion,      ///< --version: print `message`, exit 0
};

struct TerndCommand {
  TerndAction action = TerndAction::kRun;
  DaemonConfig config;      ///< the merged, validated configuration
  std::string config_file;  ///< the file that was read, or "" when none (missing default file)
  std::string message;      ///< the text to print for kHelp and kVersion
};

/// Parses ternd's command line (argv[0] is the program name) and merges the configuration file,
/// `env` and the flags over the defaults, then validates the result. Options: --config PATH
/// (also TERN_CONFIG), --dump-config, --check-config, --version, --help, and one flag per table
/// entry. --help and --version succeed without reading any file. Errors: a one-line Status
/// (kInvalidArgument for bad flags and values, kUnavailable for an unreadable explicit file).
Result<TerndCommand> parse_ternd_command_line(int argc, const char* const* argv, const Environment& env);

/// The configuration alone: parse_ternd_command_line(...).config.
Result<DaemonConfig> load_daemon_config(int argc, const char* const* argv, const Environment& env);

/// Parses TOML text (as read from `source_name`, used in messages) over `base`. Unknown keys, type
/// mismatches and out-of-range values are errors naming `source_name:line`.
Result<DaemonConfig> parse_daemon_config_toml(std::string_view text, std::string_view source_name,
                                              const DaemonConfig& base = DaemonConfig{});

/// Checks what no single setting can check alone (heartbeat_timeout >= 2 x heartbeat_interval).
/// Per-setting ranges are enforced while parsing; this re-checks them too, so a DaemonConfig
/// built in code can be validated the same way.
Status validate_daemon_config(const DaemonConfig& config);

/// The configuration as a TOML file, every setting preceded by its doc line, environment
/// variable, flag, default and allowed values as comments. Loading the output gives `config`
/// back. With `commented_out`, every setting line is a comment: the example file, which
/// documents the defaults without pinning them.
std::string dump_config_toml(const DaemonConfig& config, bool commented_out = false);

/// The version ternd reports ("0.1.0").
std::string_view ternd_version();

}  // namespace tern::daemon
