#include "report/json_report.h"

namespace tern::ibbench {

std::string_view ib_bench_version() { return IB_BENCH_VERSION; }

nlohmann::json envelope(std::string_view command) {
  return {{"tool", "ib-bench"}, {"version", ib_bench_version()}, {"command", command}};
}

nlohmann::json bw_row_to_json(const BwRow& r) {
  return {{"bytes", r.bytes},
          {"iterations", r.iterations},
          {"bw_peak_mbs", r.bw_peak_mbs},
          {"bw_avg_mbs", r.bw_avg_mbs},
          {"msg_rate_mpps", r.msg_rate_mpps}};
}

nlohmann::json lat_row_to_json(const LatRow& r) {
  return {{"bytes", r.bytes},
          {"iterations", r.iterations},
          {"t_min_us", r.t_min},
          {"t_max_us", r.t_max},
          {"t_typical_us", r.t_typical},
          {"t_avg_us", r.t_avg},
          {"t_stdev_us", r.t_stdev},
          {"p99_us", r.p99},
          {"p999_us", r.p999}};
}

nlohmann::json to_json(const SessionReport& r) {
  nlohmann::json j = envelope(name(r.perf.test));
  j["role"] = r.role;
  j["peer"] = r.peer;
  j["transport"] = {{"kind", r.transport}, {"version", r.transport_version}, {"lanes", r.lanes}};
  j["options"] = to_json(r.perf);
  nlohmann::json results = nlohmann::json::array();
  if (r.perf.test == TestKind::kBw)
    for (const BwRow& row : r.bw) results.push_back(bw_row_to_json(row));
  else
    for (const LatRow& row : r.lat) results.push_back(lat_row_to_json(row));
  j["results"] = results;
  return j;
}

nlohmann::json error_json(std::string_view command, const Status& status, int exit_code) {
  nlohmann::json j = envelope(command);
  std::string code(status_code_name(status.code()));
  for (char& c : code)
    if (c == ' ') c = '_';
  j["error"] = {{"code", code}, {"message", status.message()}, {"exit_code", exit_code}};
  return j;
}

}  // namespace tern::ibbench
