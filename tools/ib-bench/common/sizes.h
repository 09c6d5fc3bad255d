// Message sizes on the command line: "4096", "64K", "1M", "1G", lists "4,64K,1M", and perftest's
// -a sweep (every power of two from 2 B to 8 MiB).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tern/common/status.h"

namespace tern::ibbench {

/// Largest message ib-bench accepts (1 GiB): buffers are allocated whole.
inline constexpr std::size_t kMaxMessageSize = std::size_t{1} << 30;

/// "4096", "64K"/"64k" (KiB), "1M" (MiB), "1G" (GiB). kInvalidArgument for anything else,
/// zero, or more than kMaxMessageSize.
Result<std::size_t> parse_size(std::string_view text);

/// A comma-separated list of sizes, kept in the given order; duplicates rejected.
Result<std::vector<std::size_t>> parse_size_list(std::string_view text);

/// perftest's -a: 2, 4, 8, ... 8 MiB (2^1 .. 2^23).
std::vector<std::size_t> all_power_of_two_sizes();

/// "64K" for 65536, "1M", "1000": the shortest exact spelling, for tables and messages.
std::string format_size(std::size_t bytes);

/// Splits "a,b,,c" into {"a","b","c"} (empty items dropped), trimming spaces.
std::vector<std::string> split_list(std::string_view text, char separator = ',');

}  // namespace tern::ibbench
