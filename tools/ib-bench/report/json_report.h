// --json documents. Every document is one object with "tool", "version" and "command"; failures
// carry "error" {code, message, exit_code}. schema/ib-bench.schema.json describes them all.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "perf/session.h"
#include "tern/common/status.h"

namespace tern::ibbench {

/// {"tool": "ib-bench", "version": "0.1.0", "command": command}
nlohmann::json envelope(std::string_view command);
nlohmann::json bw_row_to_json(const BwRow& row);
nlohmann::json lat_row_to_json(const LatRow& row);
/// The bw/lat document: role, peer, transport, options, results.
nlohmann::json to_json(const SessionReport& report);
/// envelope + "error": {"code": "timeout", "message": ..., "exit_code": n}
nlohmann::json error_json(std::string_view command, const Status& status, int exit_code);
/// Version string of this build ("0.1.0").
std::string_view ib_bench_version();

}  // namespace tern::ibbench
