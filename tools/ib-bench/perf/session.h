// A bw/lat run between a server and a client (perftest style): the client connects to the server's
// control port, both check that their options are identical, then measure every size in turn.
//
//   client -> {"type":"hello", "proto":1, "options":{...}, "ucx_address":hex}
//   server -> {"type":"welcome", "ucx_address":hex}   or {"error":"..."} (options differ, ...)
//   per size: client {"type":"size","bytes":N} / server {"type":"ready"}; warm-up round and measured
//             round; server {"type":"side", ...its sending half (-b)}; client {"type":"row", ...}
//   client -> {"type":"bye"}, server -> {"type":"bye"}
//
// Both sides print the same rows. Blocking, single-threaded; every wait is bounded by the timeout.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perf/control.h"
#include "perf/options.h"
#include "perf/stats.h"
#include "tern/common/status.h"

namespace tern::ibbench {

inline constexpr std::uint16_t kDefaultControlPort = 18515;  // perftest's default port
inline constexpr int kControlProtocol = 1;

/// What one side needs beyond the shared options.
struct SessionConfig {
  PerfOptions perf;
  bool server = false;
  std::string host;          ///< client: the server's name or address
  std::string bind_address;  ///< server: "" = every IPv4 address
  std::uint16_t port = kDefaultControlPort;
  double timeout_s = 120;  ///< connecting / accepting, and each size's rounds
  // verbs only
  std::string ib_device;  ///< "" = the first device
  int ib_port = 1;
  int gid_index = -1;  ///< -1: 0 on InfiniBand, the first RoCE v2 GID on Ethernet
};

/// What a run measured, for the text and JSON reports.
struct SessionReport {
  std::string role;                ///< "server" | "client"
  std::string peer;                ///< "10.77.0.2:18515"
  std::string transport;           ///< "ucx" | "verbs"
  std::string transport_version;   ///< UCX version, or the verbs device name
  std::vector<std::string> lanes;  ///< UCX: "tcp/eth0"; verbs: "mlx5_0:1 (RoCE v2, gid 3)"
  PerfOptions perf;
  std::vector<BwRow> bw;
  std::vector<LatRow> lat;
};

/// Called as the run goes: once before the first size (the report has no rows yet), then per row.
struct RowSink {
  std::function<void(const SessionReport&)> started;
  std::function<void(const BwRow&)> bw_row;
  std::function<void(const LatRow&)> lat_row;
};

/// Runs one side: the server listens on config.port and serves one client; the client connects.
Result<SessionReport> run_session(const SessionConfig& config, const RowSink& sink);

/// The client side over an established control connection (all-pairs uses it).
Result<SessionReport> run_client(ControlChannel& channel, const SessionConfig& config, const RowSink& sink);

/// The server side once `hello` has been read from `channel`. `expected`: this side's options
/// (the connection is refused, naming every difference, unless the client's are identical);
/// nullptr: take the client's (all-pairs agents).
Result<SessionReport> serve_client(ControlChannel& channel, const nlohmann::json& hello, const PerfOptions* expected,
                                   const SessionConfig& config, const RowSink& sink);

}  // namespace tern::ibbench
