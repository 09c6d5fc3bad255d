#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "common/exit_codes.h"
#include "common/sizes.h"
#include "report/json_report.h"

namespace tern::ibbench {

namespace {

// Options of bw/lat as typed, before they become a PerfOptions.
struct PerfFlags {
  std::string host;
  bool server = false;
  std::string size, sizes;
  bool all = false;
  std::uint64_t iterations = 0;
  double duration = 0;
  long long warmup = -1;
  bool bidirectional = false;
  std::string mem = "host", transport = "ucx", verb = "write";
  unsigned window = kDefaultWindow;
};

void add_perf_options(CLI::App* cmd, PerfFlags& f, PerfArgs& a, bool bw) {
  cmd->add_option("server-host", f.host, "the server to connect to (client side)");
  cmd->add_flag("--server", f.server, "run the server side: wait for one client on --port");
  cmd->add_option("-p,--port", a.session.port, "control (TCP) port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--bind", a.session.bind_address, "server: address to listen on (default: all IPv4)");
  auto* size = cmd->add_option("-s,--size", f.size,
                               fmt::format("message size, e.g. 4096, 64K, 1M (default {})", bw ? "64K" : "2"));
  auto* sizes = cmd->add_option("--sizes", f.sizes, "comma-separated sizes, run in order (e.g. 8,4K,1M)");
  auto* all = cmd->add_flag("-a,--all", f.all, "every power of two from 2 B to 8 MiB (perftest -a)");
  size->excludes(sizes)->excludes(all);
  sizes->excludes(all);
  auto* iters = cmd->add_option("-n,--iters", f.iterations,
                                fmt::format("iterations per size (default {})",
                                            bw ? kDefaultBwIterations : kDefaultLatIterations))
                    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  auto* dur = cmd->add_option("-D,--duration", f.duration, "seconds per size instead of a count")
                  ->check(CLI::Range(0.001, 3600.0));
  iters->excludes(dur);
  cmd->add_option("--warmup", f.warmup,
                  "unmeasured iterations before each size (default: 10% of -n, at most 1000; 100 with -D)")
      ->check(CLI::Range(0LL, 1LL << 40));
  if (bw) {
    cmd->add_flag("-b,--bidirectional", f.bidirectional, "both sides send at once; reports the sum");
    cmd->add_option("-t,--tx-depth,--window", f.window, "sends in flight")
        ->capture_default_str()
        ->check(CLI::Range(1u, kMaxWindow));
  }
  cmd->add_option("--mem", f.mem, "message memory")->check(CLI::IsMember({"host", "cuda"}))->capture_default_str();
  cmd->add_option("--transport", f.transport, "ucx (TCP, shared memory or RDMA, as UCX picks) or verbs (RC)")
      ->check(CLI::IsMember({"ucx", "verbs"}))
      ->capture_default_str();
  cmd->add_option("--verb", f.verb, "verbs: RDMA WRITE or SEND/RECV")
      ->check(CLI::IsMember({"write", "send"}))
      ->capture_default_str();
  cmd->add_option("-d,--ib-dev", a.session.ib_device, "verbs: device (default: the first)");
  cmd->add_option("-i,--ib-port", a.session.ib_port, "verbs: port")->capture_default_str()->check(CLI::Range(1, 255));
  cmd->add_option("-x,--gid-index", a.session.gid_index,
                  "verbs: GID index (default: 0 on InfiniBand, first RoCE v2 on Ethernet)")
      ->check(CLI::Range(0, 255));
  cmd->add_option("--timeout", a.session.timeout_s, "seconds allowed for connecting and for each size")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_flag("--json", a.json, "print one JSON document (schema: tools/ib-bench/schema/ib-bench.schema.json)");
}

// Turns the flags into SessionConfig; kInvalidArgument is a usage error.
Status finish_perf(const PerfFlags& f, PerfArgs& a, TestKind test) {
  PerfOptions& p = a.session.perf;
  p.test = test;
  if (f.all) {
    p.sizes = all_power_of_two_sizes();
  } else if (!f.sizes.empty()) {
    TERN_ASSIGN_OR_RETURN(p.sizes, parse_size_list(f.sizes));
  } else if (!f.size.empty()) {
    TERN_ASSIGN_OR_RETURN(std::size_t s, parse_size(f.size));
    p.sizes = {s};
  } else {
    p.sizes = {test == TestKind::kBw ? kDefaultBwSize : kDefaultLatSize};
  }
  p.duration_s = f.duration;
  p.iterations =
      f.duration > 0
          ? 0
          : (f.iterations > 0 ? f.iterations : (test == TestKind::kBw ? kDefaultBwIterations : kDefaultLatIterations));
  if (f.warmup >= 0)
    p.warmup = static_cast<std::uint64_t>(f.warmup);
  else
    p.warmup = p.iterations > 0 ? std::min<std::uint64_t>(1000, p.iterations / 10) : 100;
  p.bidirectional = f.bidirectional;
  p.memory = f.mem == "cuda" ? MemoryKind::kCuda : MemoryKind::kHost;
  p.transport = f.transport == "verbs" ? TransportKind::kVerbs : TransportKind::kUcx;
  p.verb = f.verb == "send" ? VerbsOp::kSend : VerbsOp::kWrite;
  p.window = test == TestKind::kBw ? f.window : 0;
  if (test == TestKind::kLat) p.window = 1;
  a.session.server = f.server;
  a.session.host = f.host;
  if (f.server && !f.host.empty()) return invalid_argument("give either --server or a server host, not both");
  if (!f.server && f.host.empty()) return invalid_argument("missing the server host (or --server to be the server)");
  return validate(p);
}

int usage_error(const std::string& message, std::ostream& err) {
  err << "ib-bench: " << message << "\nRun 'ib-bench --help' (or 'ib-bench <command> --help') for usage.\n";
  return kExitUsage;
}

}  // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "ib-bench: fabric diagnostic for tern (RDMA devices, topology, GPUDirect readiness, bandwidth and latency)",
      "ib-bench"};
  app.set_version_flag("--version", std::string(ib_bench_version()));
  app.require_subcommand(1, 1);
  app.footer(
      "Exit codes: 0 ok, 1 error, 2 usage, 3 no RDMA devices, 4 check WARN, 5 check FAIL, 6 slow links, 7 "
      "unavailable.\n"
      "See docs/ib-bench.md.");

  DevicesArgs devices;
  auto* devices_cmd = app.add_subcommand("devices", "RDMA devices: ports, link layer, speed, MTU, GIDs (libibverbs)");
  devices_cmd->add_option("-d,--ib-dev", devices.device, "only this device");
  devices_cmd->add_flag("--json", devices.json, "JSON output");

  TopoArgs topo;
  auto* topo_cmd = app.add_subcommand("topo", "GPUs, RDMA NICs, NUMA nodes and the closest NIC per GPU (hwloc)");
  topo_cmd->add_option("--xml", topo.xml, "read an hwloc XML export (lstopo --of xml) instead of this machine")
      ->check(CLI::ExistingFile);
  topo_cmd->add_flag("--json", topo.json, "JSON output");

  CheckArgs check;
  auto* check_cmd =
      app.add_subcommand("check", "the doctor: GPUDirect RDMA, memlock, UCX, hugepages, ports, IOMMU/ACS");
  check_cmd
      ->add_option("--root", check.root, "read /proc and /sys under this directory (tests, inspecting a saved tree)")
      ->check(CLI::ExistingDirectory)
      ->capture_default_str();
  check_cmd->add_flag("--json", check.json, "JSON output");

  PerfArgs bw_args, lat_args;
  PerfFlags bw_flags, lat_flags;
  auto* bw_cmd = app.add_subcommand("bw", "bandwidth between two hosts (server: --server; client: the server's host)");
  add_perf_options(bw_cmd, bw_flags, bw_args, true);
  auto* lat_cmd = app.add_subcommand("lat", "latency between two hosts (ping-pong; one-way times)");
  add_perf_options(lat_cmd, lat_flags, lat_args, false);

  AllPairsArgs ap;
  std::string ap_hosts, ap_hostfile, ap_size = "1M", ap_sizes;
  std::uint64_t ap_iters = 0;
  double ap_duration = 0;
  ap.port = kDefaultControlPort;
  auto* ap_cmd = app.add_subcommand(
      "all-pairs", "bw between every ordered pair of hosts running `all-pairs --serve`; flags slow links");
  auto* serve = ap_cmd->add_flag("--serve", ap.serve, "run the agent on this node");
  auto* hosts = ap_cmd->add_option("--hosts", ap_hosts, "agents: host[:port],... (at least two)");
  auto* hostfile = ap_cmd->add_option("--hostfile", ap_hostfile, "agents, one host[:port] per line ('#' comments)")
                       ->check(CLI::ExistingFile);
  serve->excludes(hosts)->excludes(hostfile);
  hosts->excludes(hostfile);
  ap_cmd->add_option("-p,--port", ap.port, "agent port (--serve: listen; else the default for hosts without one)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  ap_cmd->add_option("--bind", ap.bind, "--serve: address to listen on");
  ap_cmd
      ->add_option("--idle-timeout", ap.idle_timeout_s,
                   "--serve: exit after this many seconds without a request (default 3600)")
      ->check(CLI::Range(0.1, 1e7));
  auto* ap_size_opt = ap_cmd->add_option("-s,--size", ap_size, "message size")->capture_default_str();
  ap_cmd->add_option("--sizes", ap_sizes, "several sizes (the largest decides)")->excludes(ap_size_opt);
  auto* ap_iters_opt = ap_cmd->add_option("-n,--iters", ap_iters, "messages per pair (default 500)")
                           ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  ap_cmd->add_option("-D,--duration", ap_duration, "seconds per pair instead")
      ->check(CLI::Range(0.001, 3600.0))
      ->excludes(ap_iters_opt);
  ap_cmd->add_option("--threshold", ap.config.threshold_pct, "flag links below this % of the median")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 100.0));
  ap_cmd->add_option("--timeout", ap.config.timeout_s, "seconds allowed per connection and size")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  ap_cmd->add_flag("--json", ap.json, "JSON output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what(), err);
  }

  if (*devices_cmd) return run_devices(devices, out, err);
  if (*topo_cmd) return run_topo(topo, out, err);
  if (*check_cmd) return run_check(check, out, err);
  if (*bw_cmd) {
    if (Status s = finish_perf(bw_flags, bw_args, TestKind::kBw); !s) return usage_error(s.message(), err);
    return run_perf(bw_args, out, err);
  }
  if (*lat_cmd) {
    if (Status s = finish_perf(lat_flags, lat_args, TestKind::kLat); !s) return usage_error(s.message(), err);
    return run_perf(lat_args, out, err);
  }
  // all-pairs
  if (!ap.serve) {
    std::string text = ap_hosts;
    if (!ap_hostfile.empty()) {
      std::ifstream f(ap_hostfile);
      std::stringstream ss;
      ss << f.rdbuf();
      text = ss.str();
    }
    if (text.empty()) return usage_error("all-pairs: give --serve, or the agents with --hosts or --hostfile", err);
    auto parsed = parse_hosts(text, ap.port);
    if (!parsed) return usage_error(parsed.status().message(), err);
    ap.config.hosts = *parsed;
    PerfOptions& p = ap.config.perf;
    p.test = TestKind::kBw;
    if (!ap_sizes.empty()) {
      auto s = parse_size_list(ap_sizes);
      if (!s) return usage_error(s.status().message(), err);
      p.sizes = *s;
    } else {
      auto s = parse_size(ap_size);
      if (!s) return usage_error(s.status().message(), err);
      p.sizes = {*s};
    }
    p.duration_s = ap_duration;
    p.iterations = ap_duration > 0 ? 0 : (ap_iters > 0 ? ap_iters : 500);
    p.warmup = p.iterations > 0 ? std::min<std::uint64_t>(100, p.iterations / 10) : 50;
    p.window = kDefaultWindow;
    if (Status s = validate(p); !s) return usage_error(s.message(), err);
  }
  return run_all_pairs_cmd(ap, out, err);
}

}  // namespace tern::ibbench
