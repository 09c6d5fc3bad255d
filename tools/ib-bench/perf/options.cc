#include "perf/options.h"

#include <fmt/format.h>

#include <cmath>

namespace tern::ibbench {

std::string_view name(TestKind v) { return v == TestKind::kBw ? "bw" : "lat"; }
std::string_view name(TransportKind v) { return v == TransportKind::kUcx ? "ucx" : "verbs"; }
std::string_view name(MemoryKind v) { return v == MemoryKind::kHost ? "host" : "cuda"; }
std::string_view name(VerbsOp v) { return v == VerbsOp::kWrite ? "write" : "send"; }

Status validate(const PerfOptions& o) {
  if (o.sizes.empty()) return invalid_argument("no message sizes");
  if ((o.iterations == 0) == (o.duration_s <= 0))
    return invalid_argument("give either a number of iterations (-n) or a duration (-D), not both");
  if (o.duration_s < 0 || o.duration_s > 3600 || std::isnan(o.duration_s))
    return invalid_argument(fmt::format("duration {} s out of range (0, 3600]", o.duration_s));
  if (o.test == TestKind::kBw && (o.window == 0 || o.window > kMaxWindow))
    return invalid_argument(fmt::format("window {} out of range 1..{}", o.window, kMaxWindow));
  if (o.test == TestKind::kLat && o.bidirectional) return invalid_argument("-b (bidirectional) applies to bw only");
  return Status::ok();
}

nlohmann::json to_json(const PerfOptions& o) {
  return nlohmann::json{{"test", name(o.test)},       {"sizes", o.sizes},
                        {"iterations", o.iterations}, {"duration_s", o.duration_s},
                        {"warmup", o.warmup},         {"bidirectional", o.bidirectional},
                        {"memory", name(o.memory)},   {"transport", name(o.transport)},
                        {"verb", name(o.verb)},       {"window", o.window}};
}

namespace {

template <typename Enum>
Result<Enum> parse_enum(const nlohmann::json& j, const char* key, std::initializer_list<Enum> values) {
  if (!j.contains(key) || !j[key].is_string())
    return corrupt_data(fmt::format("options: '{}' missing or not a string", key));
  const std::string text = j[key].get<std::string>();
  for (Enum v : values)
    if (name(v) == text) return v;
  return corrupt_data(fmt::format("options: unknown {} '{}'", key, text));
}

Result<std::uint64_t> parse_unsigned(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_unsigned())
    return corrupt_data(fmt::format("options: '{}' missing or not an unsigned number", key));
  return j[key].get<std::uint64_t>();
}

}  // namespace

Result<PerfOptions> perf_options_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return corrupt_data("options: not a JSON object");
  PerfOptions o;
  TERN_ASSIGN_OR_RETURN(o.test, parse_enum(j, "test", {TestKind::kBw, TestKind::kLat}));
  TERN_ASSIGN_OR_RETURN(o.memory, parse_enum(j, "memory", {MemoryKind::kHost, MemoryKind::kCuda}));
  TERN_ASSIGN_OR_RETURN(o.transport, parse_enum(j, "transport", {TransportKind::kUcx, TransportKind::kVerbs}));
  TERN_ASSIGN_OR_RETURN(o.verb, parse_enum(j, "verb", {VerbsOp::kWrite, VerbsOp::kSend}));
  if (!j.contains("sizes") || !j["sizes"].is_array()) return corrupt_data("options: 'sizes' missing or not an array");
  for (const auto& s : j["sizes"]) {
    if (!s.is_number_unsigned() || s.get<std::uint64_t>() == 0)
      return corrupt_data("options: a size is not a positive integer");
    o.sizes.push_back(s.get<std::size_t>());
  }
  TERN_ASSIGN_OR_RETURN(o.iterations, parse_unsigned(j, "iterations"));
  TERN_ASSIGN_OR_RETURN(o.warmup, parse_unsigned(j, "warmup"));
  TERN_ASSIGN_OR_RETURN(std::uint64_t window, parse_unsigned(j, "window"));
  if (window > kMaxWindow) return corrupt_data("options: window too large");
  o.window = static_cast<unsigned>(window);
  if (!j.contains("duration_s") || !j["duration_s"].is_number())
    return corrupt_data("options: 'duration_s' missing or not a number");
  o.duration_s = j["duration_s"].get<double>();
  if (!j.contains("bidirectional") || !j["bidirectional"].is_boolean())
    return corrupt_data("options: 'bidirectional' missing or not a boolean");
  o.bidirectional = j["bidirectional"].get<bool>();
  if (Status s = validate(o); !s) return corrupt_data("options from the peer: " + s.message());
  return o;
}

std::vector<std::string> differences(const PerfOptions& mine, const PerfOptions& theirs) {
  const nlohmann::json a = to_json(mine);
  const nlohmann::json b = to_json(theirs);
  std::vector<std::string> out;
  for (const auto& [key, value] : a.items())
    if (b.contains(key) && b[key] != value)
      out.push_back(fmt::format("{}: {} here, {} on the peer", key, value.dump(), b[key].dump()));
  return out;
}

}  // namespace tern::ibbench
