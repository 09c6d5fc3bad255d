// Merging the layers (default < file < environment < flags) and ternd's command line (CLI11).
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "config_internal.h"
#include "tern/daemon/config_table.h"

extern char** environ;  // NOLINT: POSIX

namespace tern::daemon {
namespace {

std::size_t index_of(std::string_view key) {
  const auto table = daemon_config_table();
  for (std::size_t i = 0; i < table.size(); ++i)
    if (table[i].key == key) return i;
  return table.size();
}

// The file named explicitly must exist; the default one may be absent (all defaults).
Result<std::optional<std::string>> read_config_file(const std::string& path, bool explicit_path) {
  const auto fail = [&](int err) -> Status {
    return unavailable("cannot read configuration file " + path + ": " + std::strerror(err) +
                       (explicit_path ? "" : " (the default location; --config names another)"));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !explicit_path) return std::optional<std::string>();
    return fail(errno);
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return fail(err);  // EISDIR for a directory
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > (std::size_t{1} << 20)) {
      ::close(fd);
      return invalid_argument("configuration file " + path + " is larger than 1 MiB; is it the right file?");
    }
  }
  ::close(fd);
  return std::optional<std::string>(std::move(text));
}

Status apply_environment(const Environment& env, DaemonConfig& config, ConfigSources& sources) {
  const auto table = daemon_config_table();
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto text = env.get(table[i].env);
    if (!text) continue;
    auto value = parse_config_text(table[i], *text);
    if (!value.is_ok())
      return invalid_argument("environment " + std::string(table[i].env) + ": " + value.status().message());
    table[i].set(config, *value);
    sources[i] = "environment " + std::string(table[i].env);
  }
  return Status::ok();
}

const char* value_name(ConfigType type) {
  switch (type) {
    case ConfigType::kUnsigned: return "N";
    case ConfigType::kBytes: return "SIZE";
    case ConfigType::kMilliseconds: return "MS";
    case ConfigType::kChoice: return "WORD";
    case ConfigType::kString: break;
  }
  return "TEXT";
}

}  // namespace

ConfigSources default_sources() { return ConfigSources(daemon_config_table().size(), "default"); }

Status validate_with_sources(const DaemonConfig& config, const ConfigSources& sources) {
  const auto table = daemon_config_table();
  for (std::size_t i = 0; i < table.size(); ++i) {
    const Status s = check_config_value(table[i], table[i].get(config));
    if (!s.is_ok()) return invalid_argument(sources[i] + ": " + s.message());
  }
  if (config.heartbeat_timeout < 2 * config.heartbeat_interval) {
    const std::size_t timeout = index_of("group.heartbeat_timeout_ms");
    const std::size_t interval = index_of("group.heartbeat_interval_ms");
    return invalid_argument("group.heartbeat_timeout_ms = " + std::to_string(config.heartbeat_timeout.count()) +
                            " (" + sources[timeout] + ") must be at least twice group.heartbeat_interval_ms = " +
                            std::to_string(config.heartbeat_interval.count()) + " (" + sources[interval] +
                            "), so one lost heartbeat is not a failure");
  }
  return Status::ok();
}

Status validate_daemon_config(const DaemonConfig& config) { return validate_with_sources(config, default_sources()); }

Environment Environment::from_process() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.set(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::optional<std::string> Environment::get(std::string_view name) const {
  const auto it = vars_.find(name);
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

Result<TerndCommand> parse_ternd_command_line(int argc, const char* const* argv, const Environment& env) {
  CLI::App app("ternd: tern's per-node daemon. Trainers hand it their gradient buckets through libtern; it "
               "averages them across nodes with tern's compressed allreduce.",
               "ternd");
  app.footer(
      "Every setting has a TOML key in the configuration file, an environment variable and a flag; precedence: "
      "flag > environment > file > default. `ternd --dump-config` prints them all with their docs; "
      "reference: docs/configuration.md.");
  app.get_formatter()->column_width(40);

  std::string config_path;
  bool dump = false, check = false, version = false;
  app.add_option("-c,--config", config_path,
                 "configuration file (TOML); default " + std::string(kDefaultConfigPath) +
                     ", which may be absent; environment TERN_CONFIG")
      ->type_name("PATH");
  auto* dump_opt = app.add_flag("--dump-config", dump, "print the effective configuration as TOML and exit");
  auto* check_opt =
      app.add_flag("--check-config", check, "load and validate the configuration, print 'ok' or the error, and exit");
  dump_opt->excludes(check_opt);
  app.add_flag("--version", version, "print ternd's version and exit");

  const auto table = daemon_config_table();
  const DaemonConfig defaults;
  std::vector<std::string> flag_values(table.size());
  std::vector<CLI::Option*> flag_options(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const ConfigEntry& e = table[i];
    flag_options[i] = app.add_option(std::string(e.flag), flag_values[i],
                                     std::string(e.doc) + " [" + std::string(e.key) + ", " + std::string(e.env) +
                                         "; default " + format_config_toml(e, e.get(defaults)) + "]")
                          ->type_name(value_name(e.type))
                          ->group("Settings");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return TerndCommand{TerndAction::kHelp, DaemonConfig{}, "", app.help()};
  } catch (const CLI::CallForAllHelp&) {
    return TerndCommand{TerndAction::kHelp, DaemonConfig{}, "", app.help("", CLI::AppFormatMode::All)};
  } catch (const CLI::ParseError& e) {
    return invalid_argument(std::string(e.what()) + " (see ternd --help)");
  }
  if (version) {
    return TerndCommand{TerndAction::kVersion, DaemonConfig{}, "",
                        "ternd (tern) " + std::string(ternd_version()) + "\n"};
  }

  TerndCommand command;
  command.action = dump ? TerndAction::kDumpConfig : check ? TerndAction::kCheckConfig : TerndAction::kRun;
  ConfigSources sources = default_sources();

  bool explicit_path = !config_path.empty();
  if (!explicit_path) {
    if (auto from_env = env.get("TERN_CONFIG"); from_env && !from_env->empty()) {
      config_path = *from_env;
      explicit_path = true;
    } else {
      config_path = std::string(kDefaultConfigPath);
    }
  }
  TERN_ASSIGN_OR_RETURN(auto file_text, read_config_file(config_path, explicit_path));
  if (file_text) {
    TERN_ASSIGN_OR_RETURN(command.config, apply_toml(*file_text, config_path, command.config, sources));
    command.config_file = config_path;
  }

  TERN_CHECK(apply_environment(env, command.config, sources));

  for (std::size_t i = 0; i < table.size(); ++i) {
    if (flag_options[i]->count() == 0) continue;
    auto value = parse_config_text(table[i], flag_values[i]);
    if (!value.is_ok()) return invalid_argument("flag " + std::string(table[i].flag) + ": " + value.status().message());
    table[i].set(command.config, *value);
    sources[i] = "flag " + std::string(table[i].flag);
  }

  TERN_CHECK(validate_with_sources(command.config, sources));
  return command;
}

Result<DaemonConfig> load_daemon_config(int argc, const char* const* argv, const Environment& env) {
  TERN_ASSIGN_OR_RETURN(TerndCommand command, parse_ternd_command_line(argc, argv, env));
  return std::move(command.config);
}

std::string_view ternd_version() { return TERN_VERSION_STRING; }

}  // namespace tern::daemon
