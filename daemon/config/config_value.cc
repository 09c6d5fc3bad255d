// Values of single settings: parsing text (environment, flags), range checks, TOML formatting,
// and the generated docs table.
#include <charconv>
#include <string>
#include <vector>

#include "tern/daemon/config_table.h"

namespace tern::daemon {
namespace {

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};
// Largest first: format_bytes() picks the first that divides the value.
constexpr Unit kUnits[] = {{"TiB", std::uint64_t{1} << 40}, {"GiB", std::uint64_t{1} << 30},
                           {"MiB", std::uint64_t{1} << 20}, {"KiB", std::uint64_t{1} << 10}};

std::optional<std::uint64_t> parse_digits(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string format_bytes(std::uint64_t v) {
  for (const Unit& u : kUnits)
    if (v != 0 && v % u.factor == 0) return std::to_string(v / u.factor) + std::string(u.suffix);
  return std::to_string(v);
}

std::vector<std::string_view> split_choices(std::string_view choices) {
  std::vector<std::string_view> out;
  while (!choices.empty()) {
    const std::size_t bar = choices.find('|');
    out.push_back(choices.substr(0, bar));
    if (bar == std::string_view::npos) break;
    choices.remove_prefix(bar + 1);
  }
  return out;
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
          out += kHex[static_cast<unsigned char>(c) & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string markdown_cell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Result<ConfigValue> parse_config_text(const ConfigEntry& entry, std::string_view text) {
  switch (entry.type) {
    case ConfigType::kString:
    case ConfigType::kChoice: {
      ConfigValue v = std::string(text);
      TERN_CHECK(check_config_value(entry, v));
      return v;
    }
    case ConfigType::kUnsigned:
    case ConfigType::kMilliseconds: {
      const auto v = parse_digits(text);
      if (!v) return invalid_argument(std::string(entry.key) + ": '" + std::string(text) +
                                      "' is not an unsigned integer (allowed: " + describe_allowed(entry) + ")");
      TERN_CHECK(check_config_value(entry, *v));
      return ConfigValue(*v);
    }
    case ConfigType::kBytes: {
      std::string_view digits = text;
      std::uint64_t factor = 1;
      for (const Unit& u : kUnits) {
        if (digits.ends_with(u.suffix)) {
          digits.remove_suffix(u.suffix.size());
          factor = u.factor;
          break;
        }
      }
      while (!digits.empty() && digits.back() == ' ') digits.remove_suffix(1);
      const auto n = parse_digits(digits);
      if (!n || (*n != 0 && factor > UINT64_MAX / *n))
        return invalid_argument(std::string(entry.key) + ": '" + std::string(text) +
                                "' is not a size (bytes, or a number with KiB, MiB, GiB or TiB; allowed: " +
                                describe_allowed(entry) + ")");
      ConfigValue v = *n * factor;
      TERN_CHECK(check_config_value(entry, v));
      return v;
    }
  }
  return internal_error("config entry " + std::string(entry.key) + " has an unknown type");
}

Status check_config_value(const ConfigEntry& entry, const ConfigValue& value) {
  const std::string key(entry.key);
  switch (entry.type) {
    case ConfigType::kString: {
      if (!std::holds_alternative<std::string>(value)) return invalid_argument(key + " must be a string");
      if (entry.check) {
        const Status s = entry.check(std::get<std::string>(value));
        if (!s.is_ok())
          return invalid_argument(key + " = " + toml_string(std::get<std::string>(value)) + " " + s.message());
      }
      return Status::ok();
    }
    case ConfigType::kChoice: {
      if (!std::holds_alternative<std::string>(value)) return invalid_argument(key + " must be a string");
      const auto& s = std::get<std::string>(value);
      for (std::string_view c : split_choices(entry.choices))
        if (c == s) return Status::ok();
      return invalid_argument(key + " = " + toml_string(s) + " is not one of " + describe_allowed(entry));
    }
    case ConfigType::kUnsigned:
    case ConfigType::kMilliseconds:
    case ConfigType::kBytes: {
      if (!std::holds_alternative<std::uint64_t>(value)) return invalid_argument(key + " must be a number");
      const std::uint64_t v = std::get<std::uint64_t>(value);
      if (v < entry.min || v > entry.max)
        return invalid_argument(key + " = " + format_config_toml(entry, value) + " is out of range (allowed: " +
                                describe_allowed(entry) + ")");
      return Status::ok();
    }
  }
  return internal_error("config entry " + key + " has an unknown type");
}

std::string format_config_toml(const ConfigEntry& entry, const ConfigValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return toml_string(*s);
  const std::uint64_t v = std::get<std::uint64_t>(value);
  if (entry.type == ConfigType::kBytes) {
    const std::string text = format_bytes(v);
    return text.back() == 'B' ? toml_string(text) : text;
  }
  return std::to_string(v);
}

std::string describe_allowed(const ConfigEntry& entry) {
  switch (entry.type) {
    case ConfigType::kString: return std::string(entry.choices);
    case ConfigType::kChoice: {
      std::string out;
      for (std::string_view c : split_choices(entry.choices)) out += (out.empty() ? "" : ", ") + std::string(c);
      return out;
    }
    case ConfigType::kUnsigned: return std::to_string(entry.min) + " .. " + std::to_string(entry.max);
    case ConfigType::kMilliseconds: return std::to_string(entry.min) + " .. " + std::to_string(entry.max) + " ms";
    case ConfigType::kBytes: return format_bytes(entry.min) + " .. " + format_bytes(entry.max);
  }
  return "";
}

std::string config_docs_markdown() {
  const DaemonConfig defaults;
  std::string out =
      "| key | environment | flag | default | allowed | meaning |\n"
      "|---|---|---|---|---|---|\n";
  for (const ConfigEntry& e : daemon_config_table()) {
    out += "| `" + std::string(e.key) + "` | `" + std::string(e.env) + "` | `" + std::string(e.flag) + "` | `" +
           markdown_cell(format_config_toml(e, e.get(defaults))) + "` | " + markdown_cell(describe_allowed(e)) +
           " | " + markdown_cell(e.doc) + " |\n";
  }
  return out;
}

}  // namespace tern::daemon
