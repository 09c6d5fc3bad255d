// The configuration file: TOML (toml11) to DaemonConfig, every error with file:line; and back
// (--dump-config, the example file).
#include <algorithm>
#include <sstream>
#include <vector>

#include <toml.hpp>

#include "config_internal.h"
#include "tern/daemon/config_table.h"

namespace tern::daemon {
namespace {

std::string where(const toml::value& v) {
  const toml::source_location loc = v.location();
  return loc.file_name() + ":" + std::to_string(loc.line());
}

// toml11's messages span several lines (a source excerpt with carets); ternd reports one line:
// "file:line: first line (caret notes)".
std::string one_line(const toml::exception& e) {
  const std::string what = e.what();
  std::istringstream lines(what);
  std::string line, first, notes;
  std::getline(lines, first);
  if (first.starts_with("[error] ")) first.erase(0, 8);
  if (first.starts_with("toml::")) {
    const std::size_t colon = first.find(": ");
    if (colon != std::string::npos) first.erase(0, colon + 2);
  }
  while (std::getline(lines, line)) {
    const std::size_t caret = line.find("^--- ");
    if (caret != std::string::npos) notes += (notes.empty() ? "" : "; ") + line.substr(caret + 5);
  }
  const toml::source_location loc = e.location();
  std::string out = loc.file_name() + ":" + std::to_string(loc.line()) + ": TOML syntax error: " + first;
  if (!notes.empty()) out += " (" + notes + ")";
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string leaf(std::string_view key) {
  const std::size_t dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

// A hint for a mistyped key: the known key closest in spelling, or with the same name in
// another section.
std::string suggestion(std::string_view unknown) {
  std::string_view best;
  std::size_t best_distance = 4;  // more edits than this is not a typo
  for (const ConfigEntry& e : daemon_config_table()) {
    std::size_t d = edit_distance(unknown, e.key);
    if (leaf(unknown) == leaf(e.key)) d = std::min<std::size_t>(d, 1);
    if (d < best_distance) {
      best_distance = d;
      best = e.key;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + std::string(best) + "'?)";
}

const char* type_name(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean: return "a boolean";
    case toml::value_t::integer: return "an integer";
    case toml::value_t::floating: return "a float";
    case toml::value_t::string: return "a string";
    case toml::value_t::array: return "an array";
    case toml::value_t::table: return "a table";
    default: return "a date or time";
  }
}

Result<ConfigValue> from_toml(const ConfigEntry& entry, const toml::value& v) {
  const std::string key(entry.key);
  switch (entry.type) {
    case ConfigType::kString:
    case ConfigType::kChoice:
      if (!v.is_string()) return invalid_argument(key + " must be a string, not " + type_name(v));
      return parse_config_text(entry, v.as_string().str);
    case ConfigType::kBytes:
      if (v.is_string()) return parse_config_text(entry, v.as_string().str);
      [[fallthrough]];
    case ConfigType::kUnsigned:
    case ConfigType::kMilliseconds: {
      if (!v.is_integer())
        return invalid_argument(key + " must be an integer" +
                                (entry.type == ConfigType::kBytes ? " or a size string like \"64GiB\"" : "") +
                                ", not " + type_name(v) + " (allowed: " + describe_allowed(entry) + ")");
      const toml::integer n = v.as_integer();
      if (n < 0)
        return invalid_argument(key + " = " + std::to_string(n) + " is out of range (allowed: " +
                                describe_allowed(entry) + ")");
      ConfigValue value = static_cast<std::uint64_t>(n);
      TERN_CHECK(check_config_value(entry, value));
      return value;
    }
  }
  return internal_error("config entry " + key + " has an unknown type");
}

struct Unknown {
  std::uint32_t line;
  std::string text;
};

}  // namespace

Result<DaemonConfig> apply_toml(std::string_view text, std::string_view source_name, const DaemonConfig& base,
                                ConfigSources& sources) {
  toml::value root;
  try {
    std::istringstream in{std::string(text)};
    root = toml::parse(in, std::string(source_name));
  } catch (const toml::exception& e) {
    return invalid_argument(one_line(e));
  } catch (const std::exception& e) {
    return invalid_argument(std::string(source_name) + ": cannot parse TOML: " + e.what());
  }

  DaemonConfig config = base;
  std::vector<Unknown> unknown;
  const auto table = daemon_config_table();
  for (const auto& [section, section_value] : root.as_table()) {
    if (!section_value.is_table()) {
      unknown.push_back({section_value.location().line(),
                         where(section_value) + ": unknown key '" + section + "'" + suggestion(section)});
      continue;
    }
    for (const auto& [name, value] : section_value.as_table()) {
      const std::string key = section + "." + name;
      const auto it = std::find_if(table.begin(), table.end(), [&](const ConfigEntry& e) { return e.key == key; });
      if (it == table.end()) {
        unknown.push_back({value.location().line(), where(value) + ": unknown key '" + key + "'" + suggestion(key)});
        continue;
      }
      auto parsed = from_toml(*it, value);
      if (!parsed.is_ok()) return invalid_argument(where(value) + ": " + parsed.status().message());
      it->set(config, *parsed);
      sources[static_cast<std::size_t>(it - table.begin())] = where(value);
    }
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end(), [](const Unknown& a, const Unknown& b) { return a.line < b.line; });
    std::string message;
    for (const Unknown& u : unknown) message += (message.empty() ? "" : "; ") + u.text;
    return invalid_argument(message + " (keys are listed by `ternd --dump-config`)");
  }
  return config;
}

Result<DaemonConfig> parse_daemon_config_toml(std::string_view text, std::string_view source_name,
                                              const DaemonConfig& base) {
  ConfigSources sources = default_sources();
  TERN_ASSIGN_OR_RETURN(DaemonConfig config, apply_toml(text, source_name, base, sources));
  TERN_CHECK(validate_with_sources(config, sources));
  return config;
}

std::string dump_config_toml(const DaemonConfig& config, bool commented_out) {
  const DaemonConfig defaults;
  std::string out;
  if (commented_out) {
    out +=
        "# Example ternd configuration: install as /etc/tern/ternd.toml and uncomment what you change.\n"
        "# Every setting below shows its built-in default. Generated from ternd's configuration table\n"
        "# (`ternd --dump-config` prints the effective values); reference: docs/configuration.md.\n";
  } else {
    out +=
        "# ternd configuration, as printed by `ternd --dump-config`: the effective values.\n"
        "# Reference: docs/configuration.md.\n";
  }
  out +=
      "# Precedence: flag > environment (TERN_*) > this file > built-in default.\n"
      "# Unknown keys are errors. Sizes: bytes or \"<n>KiB|MiB|GiB|TiB\"; durations: milliseconds.\n";
  std::string_view section;
  for (const ConfigEntry& e : daemon_config_table()) {
    const std::string_view key_section = e.key.substr(0, e.key.find('.'));
    if (key_section != section) {
      section = key_section;
      out += "\n[" + std::string(section) + "]\n";
    }
    out += "\n# " + std::string(e.doc) + "\n";
    out += "# allowed: " + describe_allowed(e) + "; default: " + format_config_toml(e, e.get(defaults)) + "\n";
    out += "# environment: " + std::string(e.env) + "; flag: " + std::string(e.flag) + "\n";
    out += (commented_out ? "# " : "") + leaf(e.key) + " = " + format_config_toml(e, e.get(config)) + "\n";
  }
  return out;
}

}  // namespace tern::daemon
