#include "lane_report.h"

namespace tern::transport::ucx {

namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// "3:sysv/memory.0" -> "sysv/memory"; "" when the word has no "transport/device" part.
std::string lane_transport(std::string_view word) {
  if (const std::size_t colon = word.find(':'); colon != std::string_view::npos && colon < word.find('/')) {
    word.remove_prefix(colon + 1);
  }
  if (word.find('/') == std::string_view::npos) return {};
  // The ".N" suffix is the path index; devices may contain dots themselves only before it.
  if (const std::size_t dot = word.rfind('.'); dot != std::string_view::npos && dot > word.find('/')) {
    const std::string_view suffix = word.substr(dot + 1);
    if (!suffix.empty() && suffix.find_first_not_of("0123456789") == std::string_view::npos) word = word.substr(0, dot);
  }
  return std::string(word);
}

}  // namespace

std::vector<Lane> parse_lanes(std::string_view print_info) {
  std::vector<Lane> lanes;
  while (!print_info.empty()) {
    const std::size_t newline = print_info.find('\n');
    const std::string_view line = print_info.substr(0, newline);
    print_info = newline == std::string_view::npos ? std::string_view{} : print_info.substr(newline + 1);

    const std::vector<std::string_view> words = split_words(line);
    std::size_t i = 0;
    while (i < words.size() && !words[i].starts_with("lane[")) ++i;
    if (i + 1 >= words.size()) continue;
    Lane lane;
    lane.transport = lane_transport(words[i + 1]);
    if (lane.transport.empty()) continue;
    // Roles follow the remote side ("-> md[1]/tcp/sysdev[255]").
    std::size_t j = i + 2;
    while (j < words.size() && words[j] != "->") ++j;
    for (j += 2; j < words.size(); ++j) {
      std::string_view role = words[j];
      if (const std::size_t hash = role.find('#'); hash != std::string_view::npos) role = role.substr(0, hash);
      if (!role.empty()) lane.roles.emplace_back(role);
    }
    lanes.push_back(std::move(lane));
  }
  return lanes;
}

std::string describe(const Lane& lane) {
  std::string out = lane.transport;
  if (lane.roles.empty()) return out;
  out += " (";
  for (std::size_t i = 0; i < lane.roles.size(); ++i) {
    if (i > 0) out += ", ";
    out += lane.roles[i];
  }
  out += ")";
  return out;
}

}  // namespace tern::transport::ucx
