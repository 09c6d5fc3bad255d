// ternd: load the configuration, set up logging, bind the control socket, tell systemd we are
// ready, serve until SIGTERM. Exit status: 0 after a clean shutdown, 1 when serving failed,
// 78 (EX_CONFIG) for a configuration or command-line error; the unit does not restart on 78.
#include <unistd.h>

#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

#include "logging.h"
#include "service.h"
#include "tern/daemon/config.h"
#include "tern/daemon/daemon.h"

namespace tern::daemon {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitConfig = 78;  // sysexits.h EX_CONFIG

int fail_before_logging(const Status& status, int code) {
  std::fprintf(stderr, "ternd: %s\n", status.message().c_str());
  return code;
}

int serve(const TerndCommand& command) {
  const DaemonConfig& config = command.config;
  init_logging(config);
  const std::string source = command.config_file.empty()
                                 ? "defaults (no " + std::string(kDefaultConfigPath) + ")"
                                 : command.config_file;
  spdlog::info("ternd {} starting (pid {}, uid {}, gid {}); configuration: {}", ternd_version(), ::getpid(),
               ::getuid(), ::getgid(), source);
  notify("STATUS=Starting");

  auto created = Daemon::create(config);
  if (!created.is_ok()) {
    spdlog::critical("cannot start: {}", created.status().message());
    notify("STATUS=Failed to start: " + created.status().message());
    return kExitFailure;
  }
  std::unique_ptr<Daemon> daemon = std::move(created).value();
  // Declared after the daemon: destroyed (joined) before it.
  auto signals = SignalThread::start(*daemon);
  if (!signals.is_ok()) {
    spdlog::critical("cannot start: {}", signals.status().message());
    return kExitFailure;
  }
  ServiceMonitor monitor(*daemon);

  notify("READY=1\nSTATUS=Serving on " + daemon->socket_path());
  const Status result = daemon->run();
  if (!result.is_ok()) {
    spdlog::critical("stopped with an error: {}", result.message());
    notify("STATUS=Failed: " + result.message());
    return kExitFailure;
  }
  if ((*signals)->received() == 0) {
    // run() ends only after stop(); nothing else calls it, so this is a bug worth a loud line.
    spdlog::critical("the serving loop ended without a stop request");
    return kExitFailure;
  }
  return 0;  // Daemon::run() logged the stop and its reason
}

}  // namespace
}  // namespace tern::daemon

int main(int argc, char** argv) {
  using namespace tern::daemon;
  // Before any thread exists, so that every thread inherits the mask and only SignalThread takes
  // SIGTERM/SIGINT. Writes to a departed client must fail with EPIPE, not kill the daemon.
  block_termination_signals();
  std::signal(SIGPIPE, SIG_IGN);

  auto parsed = parse_ternd_command_line(argc, argv, Environment::from_process());
  if (!parsed.is_ok()) return fail_before_logging(parsed.status(), kExitConfig);
  const TerndCommand& command = *parsed;
  switch (command.action) {
    case TerndAction::kHelp:
    case TerndAction::kVersion:
      std::fputs(command.message.c_str(), stdout);
      return 0;
    case TerndAction::kDumpConfig:
      std::fputs(dump_config_toml(command.config).c_str(), stdout);
      return 0;
    case TerndAction::kCheckConfig:
      std::printf("ternd: configuration ok (%s)\n", command.config_file.empty()
                                                        ? "built-in defaults; no configuration file"
                                                        : command.config_file.c_str());
      return 0;
    case TerndAction::kRun:
      break;
  }
  return serve(command);
}
