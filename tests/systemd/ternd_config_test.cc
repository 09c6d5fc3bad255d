// ternd's configuration table: precedence, errors (naming key, source and range), unknown keys,
// the dump -> reload round trip, and the generated artefacts kept in sync with the table (the
// example file in systemd/, the table in docs/configuration.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "tern/daemon/config.h"
#include "tern/daemon/config_table.h"

namespace tern::daemon {
namespace {

namespace fs = std::filesystem;

// The generated files are rewritten in the source tree when the test runs with this set.
constexpr const char* kRegenerateHint =
    "regenerate with: TERN_REGENERATE=1 ctest --test-dir <build> -R TerndConfig, and review the diff";
bool regenerate() { return std::getenv("TERN_REGENERATE") != nullptr; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/ternd-config-test-XXXXXX.toml";
    const int fd = ::mkstemps(name, 5);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = name;
    std::ofstream(path_) << text;
  }
  ~TempFile() { fs::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs the command-line loader on {"ternd", args...}.
Result<TerndCommand> run_cli(std::vector<std::string> args, const Environment& env = Environment()) {
  args.insert(args.begin(), "ternd");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_ternd_command_line(static_cast<int>(argv.size()), argv.data(), env);
}

std::string error_of(const Result<TerndCommand>& r) {
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? std::string() : r.status().message();
}

void expect_same(const DaemonConfig& a, const DaemonConfig& b) {
  for (const ConfigEntry& e : daemon_config_table())
    EXPECT_EQ(format_config_toml(e, e.get(a)), format_config_toml(e, e.get(b))) << e.key;
}

// A configuration where every setting differs from its default.
DaemonConfig all_changed() {
  DaemonConfig c;
  c.socket_path = "/run/tern-test/a \"quoted\" socket";
  c.socket_group = "trainers";
  c.max_clients = 7;
  c.max_client_memory_bytes = (std::uint64_t{3} << 30) + 5;
  c.advertise_host = "10.1.2.3";
  c.rendezvous_port = 29400;
  c.join_timeout = std::chrono::milliseconds(1234);
  c.op_timeout = std::chrono::milliseconds(4321);
  c.heartbeat_interval = std::chrono::milliseconds(200);
  c.heartbeat_timeout = std::chrono::milliseconds(900);
  c.pipeline_chunk_elements = 4096;
  c.pipeline_window = 9;
  c.overlap_ops = 1;
  c.poll_us = 75;
  c.ucx_tls = "rc_x,sm,self";
  c.log_level = "debug";
  c.log_format = "journal";
  return c;
}

TEST(TerndConfigTable, RowsAreConsistent) {
  std::set<std::string_view> keys, envs, flags;
  const DaemonConfig defaults;
  const DaemonConfig changed = all_changed();
  for (const ConfigEntry& e : daemon_config_table()) {
    EXPECT_TRUE(keys.insert(e.key).second) << e.key;
    EXPECT_TRUE(envs.insert(e.env).second) << e.env;
    EXPECT_TRUE(flags.insert(e.flag).second) << e.flag;
    EXPECT_TRUE(e.env.starts_with("TERN_")) << e.env;
    EXPECT_TRUE(e.flag.starts_with("--")) << e.flag;
    EXPECT_NE(e.key.find('.'), std::string_view::npos) << e.key << " has no section";
    EXPECT_FALSE(e.doc.empty()) << e.key;
    if (e.type == ConfigType::kMilliseconds) {
      EXPECT_TRUE(e.key.ends_with("_ms")) << e.key;
    }
    EXPECT_TRUE(check_config_value(e, e.get(defaults)).is_ok()) << e.key << "'s default is outside its range";
    // Every field of DaemonConfig is reachable through exactly its row.
    EXPECT_NE(format_config_toml(e, e.get(defaults)), format_config_toml(e, e.get(changed))) << e.key;
  }
  EXPECT_TRUE(validate_daemon_config(defaults).is_ok());
  EXPECT_TRUE(validate_daemon_config(changed).is_ok()) << validate_daemon_config(changed).to_string();
}

TEST(TerndConfig, PrecedenceIsFlagThenEnvironmentThenFileThenDefault) {
  TempFile file("[control]\nmax_clients = 10\n[log]\nlevel = \"warn\"\n");
  Environment env;
  env.set("TERN_MAX_CLIENTS", "20");

  auto r = run_cli({"--config", file.path(), "--max-clients", "30"}, env);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.max_clients, 30u);
  EXPECT_EQ(r->config.log_level, "warn");  // file only
  EXPECT_EQ(r->config.op_timeout, DaemonConfig{}.op_timeout);  // nowhere: default
  EXPECT_EQ(r->config_file, file.path());
  EXPECT_EQ(r->action, TerndAction::kRun);

  r = run_cli({"--config", file.path()}, env);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.max_clients, 20u);

  r = run_cli({"--config", file.path()});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.max_clients, 10u);

  TempFile empty("");
  r = run_cli({"--config=" + empty.path()});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.max_clients, DaemonConfig{}.max_clients);
}

TEST(TerndConfig, ConfigFileFromEnvironmentAndMissingFiles) {
  TempFile file("[pipeline]\nwindow = 3\n");
  Environment env;
  env.set("TERN_CONFIG", file.path());
  auto r = run_cli({}, env);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.pipeline_window, 3u);

  r = run_cli({"--config", "/nonexistent/ternd.toml"});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("/nonexistent/ternd.toml: No such file or directory"), std::string::npos)
      << r.status().message();

  env.set("TERN_CONFIG", "/nonexistent/from-env.toml");
  EXPECT_NE(error_of(run_cli({}, env)).find("/nonexistent/from-env.toml"), std::string::npos);

  EXPECT_NE(error_of(run_cli({"--config", "/tmp"})).find("Is a directory"), std::string::npos);

  if (fs::exists(kDefaultConfigPath))
    GTEST_SKIP() << kDefaultConfigPath << " exists on this machine; the missing-default case cannot be checked";
  r = run_cli({});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config_file, "");
  expect_same(r->config, DaemonConfig{});
}

TEST(TerndConfig, BadValuesNameKeySourceAndRange) {
  TempFile zero("# comment\n[control]\nmax_clients = 0\n");
  std::string e = error_of(run_cli({"--config", zero.path()}));
  EXPECT_NE(e.find(zero.path() + ":3"), std::string::npos) << e;
  EXPECT_NE(e.find("control.max_clients"), std::string::npos) << e;
  EXPECT_NE(e.find("1 .. 65536"), std::string::npos) << e;

  TempFile wrong_type("[control]\nmax_clients = \"ten\"\n");
  e = error_of(run_cli({"--config", wrong_type.path()}));
  EXPECT_NE(e.find(":2: control.max_clients must be an integer, not a string"), std::string::npos) << e;

  TempFile negative("[group]\nrendezvous_port = -1\n");
  e = error_of(run_cli({"--config", negative.path()}));
  EXPECT_NE(e.find("group.rendezvous_port = -1 is out of range (allowed: 0 .. 65535)"), std::string::npos) << e;

  TempFile level("[log]\nlevel = \"loud\"\n");
  e = error_of(run_cli({"--config", level.path()}));
  EXPECT_NE(e.find("log.level = \"loud\" is not one of trace, debug, info, warn, error"), std::string::npos) << e;

  Environment env;
  env.set("TERN_OP_TIMEOUT_MS", "5s");
  e = error_of(run_cli({}, env));
  EXPECT_NE(e.find("environment TERN_OP_TIMEOUT_MS: group.op_timeout_ms: '5s' is not an unsigned integer"),
            std::string::npos)
      << e;

  e = error_of(run_cli({"--socket-path", "relative.sock"}));
  EXPECT_NE(e.find("flag --socket-path: control.socket_path = \"relative.sock\" must be an absolute path"),
            std::string::npos)
      << e;
  e = error_of(run_cli({"--socket-path", "/" + std::string(200, 'x')}));
  EXPECT_NE(e.find("at most 107"), std::string::npos) << e;

  e = error_of(run_cli({"--max-client-memory", "64GB"}));
  EXPECT_NE(e.find("'64GB' is not a size"), std::string::npos) << e;
  e = error_of(run_cli({"--max-client-memory", "20TiB"}));
  EXPECT_NE(e.find("out of range (allowed: 1MiB .. 16TiB)"), std::string::npos) << e;
  e = error_of(run_cli({"--max-client-memory", "99999999999TiB"}));
  EXPECT_NE(e.find("is not a size"), std::string::npos) << e;

  e = error_of(run_cli({"--no-such-flag"}));
  EXPECT_NE(e.find("--no-such-flag"), std::string::npos) << e;
  EXPECT_NE(e.find("ternd --help"), std::string::npos) << e;
  e = error_of(run_cli({"--dump-config", "--check-config"}));
  EXPECT_NE(e.find("excludes"), std::string::npos) << e;
}

TEST(TerndConfig, SizesAcceptUnits) {
  TempFile file("[control]\nmax_client_memory = \"2GiB\"\n");
  auto r = run_cli({"--config", file.path()});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.max_client_memory_bytes, std::uint64_t{2} << 30);
  r = run_cli({"--max-client-memory", "1048576"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.max_client_memory_bytes, std::uint64_t{1} << 20);
  r = run_cli({"--max-client-memory", "512 MiB"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.max_client_memory_bytes, std::uint64_t{512} << 20);
}

TEST(TerndConfig, ConflictingSettingsNameBothSources) {
  TempFile file("[group]\nheartbeat_interval_ms = 1000\n");
  Environment env;
  env.set("TERN_HEARTBEAT_TIMEOUT_MS", "1500");
  const std::string e = error_of(run_cli({"--config", file.path()}, env));
  EXPECT_NE(e.find("group.heartbeat_timeout_ms = 1500 (environment TERN_HEARTBEAT_TIMEOUT_MS) must be at least twice "
                   "group.heartbeat_interval_ms = 1000 (" +
                   file.path() + ":2)"),
            std::string::npos)
      << e;
  DaemonConfig c;
  c.heartbeat_timeout = c.heartbeat_interval;
  EXPECT_FALSE(validate_daemon_config(c).is_ok());
  c.max_clients = 0;
  EXPECT_NE(validate_daemon_config(c).message().find("control.max_clients"), std::string::npos);
}

TEST(TerndConfig, UnknownKeysAreErrorsWithASuggestion) {
  TempFile typo("[control]\nsocket_path = \"/run/tern/x.sock\"\nsockt_path = \"/run/tern/y.sock\"\n");
  std::string e = error_of(run_cli({"--config", typo.path()}));
  EXPECT_NE(e.find(typo.path() + ":3: unknown key 'control.sockt_path' (did you mean 'control.socket_path'?)"),
            std::string::npos)
      << e;

  TempFile wrong_section("[group]\nlevel = \"debug\"\n");
  e = error_of(run_cli({"--config", wrong_section.path()}));
  EXPECT_NE(e.find("unknown key 'group.level' (did you mean 'log.level'?)"), std::string::npos) << e;

  TempFile top_level("max_clients = 3\n[nonsense]\nfoo = 1\n");
  e = error_of(run_cli({"--config", top_level.path()}));
  EXPECT_NE(e.find(":1: unknown key 'max_clients'"), std::string::npos) << e;
  EXPECT_NE(e.find(":3: unknown key 'nonsense.foo'"), std::string::npos) << e;
  EXPECT_LT(e.find(":1:"), e.find(":3:")) << "reported in file order: " << e;
}

TEST(TerndConfig, SyntaxErrorsAreOneLineWithFileAndLine) {
  TempFile file("[control]\nmax_clients = 3\n\n[log]\nlevel =\n");
  const std::string e = error_of(run_cli({"--config", file.path()}));
  EXPECT_NE(e.find(file.path() + ":5: TOML syntax error"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;

  TempFile duplicate("[control]\nmax_clients = 3\nmax_clients = 4\n");
  EXPECT_NE(error_of(run_cli({"--config", duplicate.path()})).find("TOML syntax error"), std::string::npos);
}

TEST(TerndConfig, DumpReloadsToTheSameConfiguration) {
  for (const DaemonConfig& original : {DaemonConfig{}, all_changed()}) {
    const std::string dumped = dump_config_toml(original);
    auto reloaded = parse_daemon_config_toml(dumped, "dumped.toml");
    ASSERT_TRUE(reloaded.is_ok()) << reloaded.status().to_string() << "\n" << dumped;
    expect_same(*reloaded, original);
  }
  // Through the command line too: --dump-config prints the merged values.
  Environment env;
  env.set("TERN_LOG_LEVEL", "trace");
  auto r = run_cli({"--dump-config", "--pipeline-window", "5"}, env);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->action, TerndAction::kDumpConfig);
  const std::string dumped = dump_config_toml(r->config);
  EXPECT_NE(dumped.find("\nwindow = 5\n"), std::string::npos) << dumped;
  EXPECT_NE(dumped.find("\nlevel = \"trace\"\n"), std::string::npos) << dumped;
  // Commented out, it documents without setting anything.
  auto example = parse_daemon_config_toml(dump_config_toml(all_changed(), true), "example.toml");
  ASSERT_TRUE(example.is_ok()) << example.status().to_string();
  expect_same(*example, DaemonConfig{});
}

TEST(TerndConfig, ExampleFileIsGeneratedFromTheTable) {
  const fs::path path = fs::path(TERN_SOURCE_DIR) / "systemd" / "ternd.toml.example";
  const std::string expected = dump_config_toml(DaemonConfig{}, /*commented_out=*/true);
  if (regenerate()) std::ofstream(path) << expected;
  EXPECT_EQ(read_file(path), expected) << path << " is out of date; " << kRegenerateHint;
}

TEST(TerndConfig, DocsTableListsExactlyTheTableKeys) {
  const std::string docs = read_file(fs::path(TERN_SOURCE_DIR) / "docs" / "configuration.md");
  const std::string begin = "<!-- ternd-config-table: generated from daemon/config/config_table.cc -->\n";
  const std::string end = "<!-- ternd-config-table end -->";
  const std::size_t b = docs.find(begin);
  const std::size_t e = docs.find(end);
  ASSERT_NE(b, std::string::npos) << "docs/configuration.md lacks the ternd table marker";
  ASSERT_NE(e, std::string::npos);
  std::string table = docs.substr(b + begin.size(), e - b - begin.size());
  if (regenerate()) {
    table = config_docs_markdown();
    std::ofstream(fs::path(TERN_SOURCE_DIR) / "docs" / "configuration.md")
        << docs.substr(0, b + begin.size()) << table << docs.substr(e);
  }

  std::set<std::string> documented;
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| `")) continue;
    documented.insert(line.substr(3, line.find('`', 3) - 3));
  }
  std::set<std::string> keys;
  for (const ConfigEntry& entry : daemon_config_table()) keys.insert(std::string(entry.key));
  EXPECT_EQ(documented, keys);
  // And every column (env, flag, default, allowed, doc) matches the table.
  EXPECT_EQ(table, config_docs_markdown()) << "docs/configuration.md is out of date; " << kRegenerateHint;
}

TEST(TerndConfig, HelpAndVersionNeedNoFile) {
  auto r = run_cli({"--help", "--config", "/nonexistent"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->action, TerndAction::kHelp);
  for (const ConfigEntry& e : daemon_config_table())
    EXPECT_NE(r->message.find(std::string(e.flag)), std::string::npos) << e.flag << " missing from --help";
  r = run_cli({"--version"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->action, TerndAction::kVersion);
  EXPECT_EQ(r->message, "ternd (tern) " + std::string(ternd_version()) + "\n");
  r = run_cli({"--check-config", "--config", "/dev/null"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->action, TerndAction::kCheckConfig);
}

}  // namespace
}  // namespace tern::daemon
