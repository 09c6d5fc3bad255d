// The subcommands once parsed: run the piece, print text or JSON, choose the exit code.
#include <fmt/format.h>

#include <ostream>

#include "cli/cli.h"
#include "common/exit_codes.h"
#include "common/sizes.h"
#include "doctor/checks.h"
#include "report/json_report.h"
#include "report/table.h"
#include "topo/hwloc_loader.h"
#include "verbs/devices.h"
#include "verbs/verbs_raii.h"

namespace tern::ibbench {

int exit_code_for(const Status& status) {
  if (status.is_ok()) return kExitOk;
  if (is_no_rdma(status)) return kExitNoRdma;
  if (status.code() == StatusCode::kUnavailable) return kExitUnavailable;
  return kExitError;
}

namespace {

// Reports a failure once: on stderr, and as the JSON document when --json.
int fail(std::string_view command, const Status& status, bool json, std::ostream& out, std::ostream& err,
         nlohmann::json extra = nlohmann::json::object()) {
  const int code = exit_code_for(status);
  err << "ib-bench " << command << ": " << status.message() << "\n";
  if (json) {
    nlohmann::json doc = error_json(command, status, code);
    doc.update(extra);
    out << doc.dump(2) << "\n";
  }
  return code;
}

}  // namespace

int run_devices(const DevicesArgs& args, std::ostream& out, std::ostream& err) {
  auto devices = list_devices(args.device);
  if (!devices) return fail("devices", devices.status(), args.json, out, err, {{"devices", nlohmann::json::array()}});
  if (args.json) {
    nlohmann::json doc = envelope("devices");
    doc["devices"] = nlohmann::json::array();
    for (const DeviceInfo& d : *devices) doc["devices"].push_back(to_json(d));
    out << doc.dump(2) << "\n";
  } else {
    out << format_devices(*devices);
  }
  return kExitOk;
}

int run_topo(const TopoArgs& args, std::ostream& out, std::ostream& err) {
  auto topo = load_topology(args.xml);
  if (!topo) return fail("topo", topo.status(), args.json, out, err);
  const std::vector<GpuAffinity> affinity = classify(*topo);
  if (args.json) {
    nlohmann::json doc = envelope("topo");
    doc.update(to_json(*topo, affinity));
    out << doc.dump(2) << "\n";
  } else {
    out << format_topology(*topo, affinity);
  }
  return kExitOk;
}

int run_check(const CheckArgs& args, std::ostream& out, std::ostream&) {
  DoctorInputs in;
  in.root = args.root;
  const std::vector<CheckResult> results = run_doctor(in);
  if (args.json) {
    nlohmann::json doc = envelope("check");
    doc.update(to_json(results));
    out << doc.dump(2) << "\n";
  } else {
    out << format_checks(results);
  }
  switch (worst(results)) {
    case CheckStatus::kPass:
      return kExitOk;
    case CheckStatus::kWarn:
      return kExitCheckWarn;
    case CheckStatus::kFail:
      return kExitCheckFail;
  }
  return kExitError;
}

int run_perf(const PerfArgs& args, std::ostream& out, std::ostream& err) {
  const SessionConfig& c = args.session;
  const PerfOptions& p = c.perf;
  const bool bw = p.test == TestKind::kBw;
  RowSink sink;
  if (!args.json) {
    sink.started = [&](const SessionReport& r) {
      std::string lanes;
      for (const std::string& l : r.lanes) lanes += (lanes.empty() ? "" : ", ") + l;
      out << rule() << "\n";
      out << fmt::format("                    {} {} test (ib-bench)\n",
                         r.transport == "ucx" ? "UCX tag" : (p.verb == VerbsOp::kWrite ? "RDMA WRITE" : "RDMA SEND"),
                         bw ? "bandwidth" : "latency");
      out << fmt::format(" Role           : {} ({} {})\n", r.role, r.role == "client" ? "server" : "client", r.peer);
      out << fmt::format(" Transport      : {} {} [{}]\n", r.transport, r.transport_version, lanes);
      out << fmt::format(" Memory         : {}\n", name(p.memory));
      if (bw)
        out << fmt::format(" Direction      : {}    Window: {}\n",
                           p.bidirectional ? "bidirectional (sum of both)" : "unidirectional", p.window);
      if (p.iterations > 0)
        out << fmt::format(" Iterations     : {} per size, {} warm-up\n", p.iterations, p.warmup);
      else
        out << fmt::format(" Duration       : {:g} s per size, {} warm-up\n", p.duration_s, p.warmup);
      out << (bw ? " MB = 2^20 bytes\n" : " one-way latency (half the round trip)\n");
      out << rule() << "\n" << (bw ? bw_header() : lat_header()) << "\n";
      out.flush();
    };
    sink.bw_row = [&](const BwRow& row) { out << bw_line(row) << "\n" << std::flush; };
    sink.lat_row = [&](const LatRow& row) { out << lat_line(row) << "\n" << std::flush; };
  }
  auto report = run_session(c, sink);
  if (!report) return fail(name(p.test), report.status(), args.json, out, err);
  if (args.json)
    out << to_json(*report).dump(2) << "\n";
  else
    out << rule() << "\n";
  return kExitOk;
}

int run_all_pairs_cmd(const AllPairsArgs& args, std::ostream& out, std::ostream& err) {
  if (args.serve) {
    Status s = serve_agent(args.bind, args.port, args.idle_timeout_s, args.config.timeout_s);
    if (!s) return fail("all-pairs", s, args.json, out, err);
    return kExitOk;
  }
  auto progress = [&](const PairResult& p) {
    if (args.json) return;
    const auto& h = args.config.hosts;
    if (p.error.empty())
      out << fmt::format("  {} -> {}: {:.1f} MB/sec\n", h[p.from].label(), h[p.to].label(), p.bw_avg_mbs);
    else
      out << fmt::format("  {} -> {}: FAILED: {}\n", h[p.from].label(), h[p.to].label(), p.error);
    out.flush();
  };
  auto report = run_all_pairs(args.config, progress);
  if (!report) return fail("all-pairs", report.status(), args.json, out, err);
  if (args.json)
    out << to_json(*report).dump(2) << "\n";
  else
    out << "\n" << format_all_pairs(*report);
  return report->slow_links > 0 ? kExitSlowLinks : kExitOk;
}

}  // namespace tern::ibbench
