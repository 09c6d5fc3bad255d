#include "common/sizes.h"

#include <charconv>
#include <set>

namespace tern::ibbench {

Result<std::size_t> parse_size(std::string_view text) {
  const std::string shown(text);
  std::uint64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [next, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || next == begin) return invalid_argument("bad size '" + shown + "' (e.g. 4096, 64K, 1M)");
  const std::string_view suffix(next, static_cast<std::size_t>(end - next));
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "m")
    shift = 20;
  else if (suffix == "G" || suffix == "g")
    shift = 30;
  else if (!suffix.empty())
    return invalid_argument("bad size suffix in '" + shown + "' (use K, M or G)");
  if (value == 0) return invalid_argument("size '" + shown + "' must be at least 1 byte");
  if (value > (kMaxMessageSize >> shift)) return invalid_argument("size '" + shown + "' exceeds the 1G limit");
  return static_cast<std::size_t>(value << shift);
}

Result<std::vector<std::size_t>> parse_size_list(std::string_view text) {
  std::vector<std::size_t> sizes;
  std::set<std::size_t> seen;
  for (const std::string& item : split_list(text)) {
    TERN_ASSIGN_OR_RETURN(std::size_t size, parse_size(item));
    if (!seen.insert(size).second) return invalid_argument("size " + item + " listed twice");
    sizes.push_back(size);
  }
  if (sizes.empty()) return invalid_argument("empty size list");
  return sizes;
}

std::vector<std::size_t> all_power_of_two_sizes() {
  std::vector<std::size_t> sizes;
  for (unsigned p = 1; p <= 23; ++p) sizes.push_back(std::size_t{1} << p);
  return sizes;
}

std::string format_size(std::size_t bytes) {
  if (bytes >= (std::size_t{1} << 30) && bytes % (std::size_t{1} << 30) == 0) return std::to_string(bytes >> 30) + "G";
  if (bytes >= (std::size_t{1} << 20) && bytes % (std::size_t{1} << 20) == 0) return std::to_string(bytes >> 20) + "M";
  if (bytes >= (std::size_t{1} << 10) && bytes % (std::size_t{1} << 10) == 0) return std::to_string(bytes >> 10) + "K";
  return std::to_string(bytes);
}

std::vector<std::string> split_list(std::string_view text, char separator) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t stop = text.find(separator, start);
    if (stop == std::string_view::npos) stop = text.size();
    std::string_view item = text.substr(start, stop - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) items.emplace_back(item);
    start = stop + 1;
  }
  return items;
}

}  // namespace tern::ibbench
