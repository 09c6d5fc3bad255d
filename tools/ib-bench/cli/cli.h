// ib-bench's command line (CLI11): subcommands devices, topo, check, bw, lat, all-pairs.
// run_cli is main() without the process: tests call it with their own argv and streams.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "allpairs/allpairs.h"
#include "perf/session.h"

namespace tern::ibbench {

/// Parses argv and runs the subcommand; returns the process exit code (common/exit_codes.h).
/// Usage errors print the reason and a hint to `err` and return kExitUsage (2).
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// ---- subcommands (cli/commands.cc), called after parsing ----------------------------------------

struct DevicesArgs {
  std::string device;
  bool json = false;
};
struct TopoArgs {
  std::string xml;
  bool json = false;
};
struct CheckArgs {
  std::string root = "/";
  bool json = false;
};
struct PerfArgs {
  SessionConfig session;
  bool json = false;
};
struct AllPairsArgs {
  bool serve = false;
  std::string bind;
  std::uint16_t port = 0;
  double idle_timeout_s = 0;
  AllPairsConfig config;
  bool json = false;
};

int run_devices(const DevicesArgs& args, std::ostream& out, std::ostream& err);
int run_topo(const TopoArgs& args, std::ostream& out, std::ostream& err);
int run_check(const CheckArgs& args, std::ostream& out, std::ostream& err);
int run_perf(const PerfArgs& args, std::ostream& out, std::ostream& err);
int run_all_pairs_cmd(const AllPairsArgs& args, std::ostream& out, std::ostream& err);

/// The exit code for a failed Status: no RDMA devices 3, other kUnavailable 7, anything else 1.
int exit_code_for(const Status& status);

}  // namespace tern::ibbench
