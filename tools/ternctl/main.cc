// ternctl: what the node's ternd is doing (clients, groups, members, ops in flight, bytes per codec,
// recent errors), from the daemon's status JSON (Daemon::status_json) over the control socket.
//
//   ternctl status [--json] [--socket /run/tern/ternd.sock]
//
// Exit status: 0 on success, 1 when ternd cannot be reached (the message says why).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "tern/tern.hpp"

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

void print_human(const nlohmann::json& j) {
  const auto& d = j.at("daemon");
  std::cout << "ternd on " << d.value("host", "?") << " (pid " << d.value("pid", 0) << ", socket "
            << d.value("socket", "?") << ", advertising " << d.value("advertise_host", "?") << ")"
            << (d.value("stopping", false) ? " [stopping]" : "") << "\n";
  std::cout << "clients: " << j.at("clients").size() << " connected, " << d.value("clients_accepted", 0)
            << " accepted, " << d.value("clients_refused", 0) << " refused, " << d.value("protocol_errors", 0)
            << " disconnected for protocol errors\n";
  for (const auto& c : j.at("clients"))
    std::cout << "  client " << c.value("id", 0) << ": pid " << c.value("pid", 0) << " uid " << c.value("uid", 0)
              << ", " << c.value("arenas", 0) << " arenas (" << human_bytes(c.value("arena_bytes", 0.0)) << "), "
              << c.value("groups", 0) << " groups\n";
  std::cout << "groups: " << j.at("groups").size() << "\n";
  for (const auto& g : j.at("groups")) {
    std::cout << "  group " << g.value("id", "?") << " [" << g.value("state", "?") << "]: " << g.value("nranks", 0)
              << " trainers on " << g.value("nnodes", 0) << " nodes, this is node " << g.value("node_rank", 0)
              << " (uid " << g.value("uid", 0) << ")\n";
    std::cout << "    ops: " << g.value("ops_done", 0) << " done, " << g.value("ops_failed", 0) << " failed, "
              << g.value("ops_in_flight", 0) << " in flight\n";
    for (const auto& m : g.at("members"))
      std::cout << "    rank " << m.value("rank", 0) << ": " << (m.value("present", false) ? "present" : "absent")
                << ", pid " << m.value("pid", 0) << ", " << m.value("queued", 0) << " queued\n";
    for (const auto& [codec, s] : g.at("codecs").items())
      std::cout << "    " << codec << ": " << s.value("ops", 0) << " ops, out "
                << human_bytes(s.value("bytes_out", 0.0))
                << ", in " << human_bytes(s.value("bytes_in", 0.0)) << "\n";
    if (g.contains("failure")) std::cout << "    failure: " << g.value("failure", "") << "\n";
    for (const auto& e : g.at("errors")) std::cout << "    error: " << e.get<std::string>() << "\n";
  }
  if (!j.at("errors").empty()) {
    std::cout << "recent client errors:\n";
    for (const auto& e : j.at("errors")) std::cout << "  " << e.get<std::string>() << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ternctl: inspect the node's ternd"};
  app.require_subcommand(1);
  std::string socket;
  bool json = false;
  auto* status = app.add_subcommand("status", "groups, members, ops in flight, bytes per codec, errors");
  status->add_option("--socket", socket, "control socket (default: $TERN_SOCKET, else /run/tern/ternd.sock)");
  status->add_flag("--json", json, "print the daemon's JSON as is");
  CLI11_PARSE(app, argc, argv);
  try {
    tern::Client client(socket.empty() ? nullptr : socket.c_str());
    const std::string text = client.daemon_status();
    if (json) {
      std::cout << text << "\n";
    } else {
      print_human(nlohmann::json::parse(text));
    }
  } catch (const tern::Error& e) {
    std::cerr << "ternctl: " << e.what() << "\n";
    return 1;
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "ternctl: ternd sent a status this ternctl cannot read: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
