// ternd's configuration: one table of settings, each with a TOML key, an environment variable, a
// command-line flag, a default and a doc line (daemon/config/config_table.cc). Precedence: flag >
// environment > file (/etc/tern/ternd.toml) > default. `ternd --dump-config` prints the effective
// values as a commented TOML file.
//
// Thread safety: a DaemonConfig is a plain value; load it once at start-up and share it read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tern/common/status.h"

namespace tern::daemon {

struct DaemonConfig {
  // control socket
  std::string socket_path = "/run/tern/ternd.sock";  ///< Unix socket trainers connect to
  std::string socket_group = "";   ///< group owning the socket (mode 0660); empty: the daemon's group
  std::uint32_t max_clients = 256;  ///< connected trainers at once; more are refused with a message
  std::uint64_t max_client_memory_bytes = std::uint64_t{64} << 30;  ///< shared memory per client
  // groups and the inter-node transport
  std::string advertise_host = "";  ///< address peers reach this node at; empty: first non-loopback IPv4
  std::uint16_t rendezvous_port = 0;  ///< port of rendezvous this node hosts; 0: ephemeral per group
  std::chrono::milliseconds join_timeout{30'000};   ///< default group formation deadline
  std::chrono::milliseconds op_timeout{30'000};     ///< default allreduce deadline
  std::chrono::milliseconds heartbeat_interval{1'000};
  std::chrono::milliseconds heartbeat_timeout{5'000};
  std::uint32_t pipeline_chunk_elements = 1u << 17;
  std::uint32_t pipeline_window = 4;
  std::string ucx_tls = "";  ///< UCX_TLS for inter-node traffic; empty: UCX's choice
  // logging
  std::string log_level = "info";  ///< trace, debug, info, warn, error
};

}  // namespace tern::daemon
