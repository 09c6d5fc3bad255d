// `ib-bench all-pairs`: bandwidth between every ordered pair of a group of nodes, flagging links
// below a share of the median (the check NCCL's maintainers ask users to run by hand, pair by pair).
//
// Each node runs an agent, `ib-bench all-pairs --serve`, listening on a control port. The
// coordinator (`ib-bench all-pairs --hosts a,b,c`, from any machine that reaches the agents) asks
// the agent on A to measure towards B: A's agent runs the bw client against B's agent, which serves
// it like `bw --server` with the options A sent, and A reports the row back. Pairs run one at a
// time, so no link carries two measurements at once.
//
//   coordinator -> agent A: {"type":"measure","target":"B","port":p,"options":{...},"timeout_s":t}
//   agent A -> agent B:     the bw protocol (perf/session.h)
//   agent A -> coordinator: {"type":"result","row":{...},"lanes":[...]} or {"error":"..."}
//   coordinator -> agent:   {"type":"ping"} -> {"type":"pong","host":name}  (reachability check)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "perf/options.h"
#include "tern/common/status.h"

namespace tern::ibbench {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string label() const;  ///< "10.77.0.1" or "10.77.0.1:18600"
};

/// "a,b:1234,[fe80::1]:99" (or one host per line of a host file: '#' comments, blank lines) ->
/// hosts; missing ports get `default_port`. kInvalidArgument for bad ports, duplicates or fewer
/// than two hosts.
Result<std::vector<HostPort>> parse_hosts(std::string_view text, std::uint16_t default_port);

struct PairResult {
  std::size_t from = 0, to = 0;  ///< indices into the host list
  double bw_avg_mbs = 0;
  double bw_peak_mbs = 0;
  std::string error;  ///< non-empty: the pair could not be measured
  bool slow = false;  ///< below threshold of the median, or failed
};

struct AllPairsReport {
  std::vector<HostPort> hosts;
  std::vector<PairResult> pairs;
  double median_mbs = 0;
  double threshold_pct = 0;
  std::size_t slow_links = 0;
  PerfOptions perf;
};

/// Median of the values (0 for none).
double median(std::vector<double> values);
/// Marks pairs with an error, or below `threshold_pct` % of the median of the measured ones;
/// sets report.median_mbs and slow_links.
void flag_slow_links(AllPairsReport& report);

struct AllPairsConfig {
  std::vector<HostPort> hosts;
  PerfOptions perf;  ///< bw options for every pair
  double threshold_pct = 80;
  double timeout_s = 60;
};

/// Checks every agent answers, then measures every ordered pair; `progress` sees each result.
Result<AllPairsReport> run_all_pairs(const AllPairsConfig& config,
                                     const std::function<void(const PairResult&)>& progress);

/// The agent: serves requests until `idle_timeout_s` passes without one (0: one hour). Errors of a
/// single request are reported to its requester and logged; the agent goes on.
Status serve_agent(const std::string& bind_address, std::uint16_t port, double idle_timeout_s, double timeout_s);

nlohmann::json to_json(const AllPairsReport& report);
std::string format_all_pairs(const AllPairsReport& report);

}  // namespace tern::ibbench
