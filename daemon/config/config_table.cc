// The rows of ternd's configuration table. Defaults are not repeated here: they are whatever a
// default-constructed DaemonConfig holds (config.h), read through each row's accessor.
#include <array>
#include <chrono>
#include <string>
#include <type_traits>

#include "tern/daemon/config_table.h"

namespace tern::daemon {
namespace {

ConfigValue to_value(const std::string& v) { return v; }
ConfigValue to_value(std::chrono::milliseconds v) { return static_cast<std::uint64_t>(v.count()); }
template <typename T>
  requires std::is_unsigned_v<T>
ConfigValue to_value(T v) { return static_cast<std::uint64_t>(v); }

// Values reaching a setter were range-checked against the row (max fits the field's type).
void from_value(const ConfigValue& v, std::string& out) { out = std::get<std::string>(v); }
void from_value(const ConfigValue& v, std::chrono::milliseconds& out) {
  out = std::chrono::milliseconds(static_cast<std::int64_t>(std::get<std::uint64_t>(v)));
}
template <typename T>
  requires std::is_unsigned_v<T>
void from_value(const ConfigValue& v, T& out) { out = static_cast<T>(std::get<std::uint64_t>(v)); }

template <auto Member>
ConfigValue get_field(const DaemonConfig& c) { return to_value(c.*Member); }
template <auto Member>
void set_field(DaemonConfig& c, const ConfigValue& v) { from_value(v, c.*Member); }

// Linux's sockaddr_un::sun_path holds 108 bytes including the terminating NUL.
constexpr std::size_t kMaxSocketPath = 107;

Status check_socket_path(std::string_view v) {
  if (v.empty() || v.front() != '/') return invalid_argument("must be an absolute path");
  if (v.size() > kMaxSocketPath)
    return invalid_argument("is " + std::to_string(v.size()) + " bytes; a Unix socket path holds at most " +
                            std::to_string(kMaxSocketPath));
  if (v.find('\0') != std::string_view::npos) return invalid_argument("must not contain NUL");
  return Status::ok();
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

Status check_group_name(std::string_view v) {
  if (v.empty()) return Status::ok();
  if (v.size() > 32 || v.front() == '-')
    return invalid_argument("must be empty or a group name (at most 32 of [A-Za-z0-9_.-], not starting with '-')");
  for (char c : v)
    if (!is_name_char(c))
      return invalid_argument("must be empty or a group name (at most 32 of [A-Za-z0-9_.-], not starting with '-')");
  return Status::ok();
}

Status check_host(std::string_view v) {
  if (v.size() > 253) return invalid_argument("must be at most 253 bytes");
  for (char c : v)
    if (!is_name_char(c) && c != ':')
      return invalid_argument("must be empty, a host name or an IP address ([A-Za-z0-9.:-])");
  return Status::ok();
}

Status check_ucx_tls(std::string_view v) {
  for (char c : v)
    if (!is_name_char(c) && c != ',' && c != '^' && c != ':')
      return invalid_argument("must be empty or a UCX_TLS list such as \"rc_x,sm,self\" or \"^tcp\"");
  return Status::ok();
}

constexpr std::uint64_t kMinute = 60'000;
constexpr std::uint64_t kHour = 60 * kMinute;
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kTiB = std::uint64_t{1} << 40;

using enum ConfigType;

// clang-format off
const std::array kTable = std::to_array<ConfigEntry>({
  {"control.socket_path", "TERN_SOCKET", "--socket-path", kString, 0, 0, "absolute path, at most 107 bytes",
   "Unix socket trainers connect to; libtern and ternctl read the same TERN_SOCKET",
   get_field<&DaemonConfig::socket_path>, set_field<&DaemonConfig::socket_path>, check_socket_path},
  {"control.socket_group", "TERN_SOCKET_GROUP", "--socket-group", kString, 0, 0, "empty or a group name",
   "group owning the socket (mode 0660): users in it may connect; empty: ternd's own group",
   get_field<&DaemonConfig::socket_group>, set_field<&DaemonConfig::socket_group>, check_group_name},
  {"control.max_clients", "TERN_MAX_CLIENTS", "--max-clients", kUnsigned, 1, 65536, "",
   "trainers connected at once; more are refused with a message",
   get_field<&DaemonConfig::max_clients>, set_field<&DaemonConfig::max_clients>, nullptr},
  {"control.max_client_memory", "TERN_MAX_CLIENT_MEMORY", "--max-client-memory", kBytes, kMiB, 16 * kTiB, "",
   "shared memory one trainer may map into ternd (arenas and staging), bytes or \"<n>MiB|GiB|TiB\"",
   get_field<&DaemonConfig::max_client_memory_bytes>, set_field<&DaemonConfig::max_client_memory_bytes>, nullptr},
  {"control.poll_us", "TERN_POLL_US", "--poll-us", kUnsigned, 0, 100000, "",
   "after serving a submission, microseconds ternd keeps polling the trainers' rings before it sleeps "
   "(saves the next operation's wake-up on nodes with a spare core; where trainers spin on every core it "
   "only competes with them); 0: sleep at once",
   get_field<&DaemonConfig::poll_us>, set_field<&DaemonConfig::poll_us>, nullptr},

  {"group.advertise_host", "TERN_ADVERTISE_HOST", "--advertise-host", kString, 0, 0, "empty, a host name or an IP address",
   "address other nodes reach this node at; empty: the first non-loopback IPv4 address",
   get_field<&DaemonConfig::advertise_host>, set_field<&DaemonConfig::advertise_host>, check_host},
  {"group.rendezvous_port", "TERN_RENDEZVOUS_PORT", "--rendezvous-port", kUnsigned, 0, 65535, "",
   "TCP port of the group rendezvous this node hosts; 0: an ephemeral port per group",
   get_field<&DaemonConfig::rendezvous_port>, set_field<&DaemonConfig::rendezvous_port>, nullptr},
  {"group.join_timeout_ms", "TERN_JOIN_TIMEOUT_MS", "--join-timeout-ms", kMilliseconds, 100, 24 * kHour, "",
   "default deadline for a group to form (all ranks joined)",
   get_field<&DaemonConfig::join_timeout>, set_field<&DaemonConfig::join_timeout>, nullptr},
  {"group.op_timeout_ms", "TERN_OP_TIMEOUT_MS", "--op-timeout-ms", kMilliseconds, 100, 24 * kHour, "",
   "default deadline of one allreduce",
   get_field<&DaemonConfig::op_timeout>, set_field<&DaemonConfig::op_timeout>, nullptr},
  {"group.heartbeat_interval_ms", "TERN_HEARTBEAT_INTERVAL_MS", "--heartbeat-interval-ms", kMilliseconds, 10, 10 * kMinute, "",
   "how often nodes of a group tell each other they are alive",
   get_field<&DaemonConfig::heartbeat_interval>, set_field<&DaemonConfig::heartbeat_interval>, nullptr},
  {"group.heartbeat_timeout_ms", "TERN_HEARTBEAT_TIMEOUT_MS", "--heartbeat-timeout-ms", kMilliseconds, 20, 24 * kHour, "",
   "silence after which a node is declared failed; at least twice heartbeat_interval_ms",
   get_field<&DaemonConfig::heartbeat_timeout>, set_field<&DaemonConfig::heartbeat_timeout>, nullptr},

  {"pipeline.chunk_elements", "TERN_PIPELINE_CHUNK_ELEMENTS", "--pipeline-chunk-elements", kUnsigned, 128, 1u << 28, "",
   "elements per pipeline chunk of the inter-node allreduce (rounded to codec blocks)",
   get_field<&DaemonConfig::pipeline_chunk_elements>, set_field<&DaemonConfig::pipeline_chunk_elements>, nullptr},
  {"pipeline.window", "TERN_PIPELINE_WINDOW", "--pipeline-window", kUnsigned, 1, 64, "",
   "chunks in flight per peer and direction",
   get_field<&DaemonConfig::pipeline_window>, set_field<&DaemonConfig::pipeline_window>, nullptr},
  {"pipeline.overlap_ops", "TERN_PIPELINE_OVERLAP_OPS", "--pipeline-overlap-ops", kUnsigned, 1, 2, "",
   "operations of a group that may run at once on a node with one trainer of it and host buffers: a "
   "small bucket moves while the previous one drains (results are unchanged); 1: one at a time",
   get_field<&DaemonConfig::overlap_ops>, set_field<&DaemonConfig::overlap_ops>, nullptr},

  {"ucx.tls", "TERN_UCX_TLS", "--ucx-tls", kString, 0, 0, "empty or a UCX_TLS list",
   "UCX transports for inter-node traffic (UCX_TLS syntax); empty: UCX's own choice",
   get_field<&DaemonConfig::ucx_tls>, set_field<&DaemonConfig::ucx_tls>, check_ucx_tls},

  {"log.level", "TERN_LOG_LEVEL", "--log-level", kChoice, 0, 0, "trace|debug|info|warn|error",
   "least severe messages logged",
   get_field<&DaemonConfig::log_level>, set_field<&DaemonConfig::log_level>, nullptr},
  {"log.format", "TERN_LOG_FORMAT", "--log-format", kChoice, 0, 0, "auto|text|journal",
   "journal: \"<N>\" priority prefixes, no timestamps; auto: journal when stderr is journald's",
   get_field<&DaemonConfig::log_format>, set_field<&DaemonConfig::log_format>, nullptr},
});
// clang-format on

}  // namespace

std::span<const ConfigEntry> daemon_config_table() { return kTable; }

}  // namespace tern::daemon
