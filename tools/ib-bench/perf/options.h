// What a bw/lat measurement does, as both sides must agree on it (perftest style: the server and the
// client are started with the same options; the client sends its set and the server refuses a
// connection whose set differs, naming each difference).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tern/common/status.h"

namespace tern::ibbench {

enum class TestKind { kBw, kLat };
enum class TransportKind { kUcx, kVerbs };
enum class MemoryKind { kHost, kCuda };
enum class VerbsOp { kWrite, kSend };

std::string_view name(TestKind v);
std::string_view name(TransportKind v);
std::string_view name(MemoryKind v);
std::string_view name(VerbsOp v);

/// The options both sides must share. Defaults follow perftest (bw 64 KiB x 5000, lat 2 B x 1000).
struct PerfOptions {
  TestKind test = TestKind::kBw;
  std::vector<std::size_t> sizes;  ///< in run order; never empty once validated
  std::uint64_t iterations = 0;    ///< messages per size (bw) / round trips (lat); 0 with duration
  double duration_s = 0;           ///< seconds per size instead of a count; 0 with iterations
  std::uint64_t warmup = 0;        ///< unmeasured messages / round trips before each size
  bool bidirectional = false;      ///< bw: both sides send at once (reported: the sum)
  MemoryKind memory = MemoryKind::kHost;
  TransportKind transport = TransportKind::kUcx;
  VerbsOp verb = VerbsOp::kWrite;  ///< verbs only
  unsigned window = 0;             ///< bw: sends in flight per side (perftest's tx depth)
};

inline constexpr std::uint64_t kDefaultBwIterations = 5000;
inline constexpr std::uint64_t kDefaultLatIterations = 1000;
inline constexpr std::size_t kDefaultBwSize = 65536;
inline constexpr std::size_t kDefaultLatSize = 2;
inline constexpr unsigned kDefaultWindow = 64;
inline constexpr unsigned kMaxWindow = 4096;

/// kInvalidArgument naming the first inconsistency (no sizes, both or neither of iterations and
/// duration, a window of 0 or above kMaxWindow, lat with -b, ...).
Status validate(const PerfOptions& options);

/// The canonical form exchanged on the control connection and printed under "options" in --json.
nlohmann::json to_json(const PerfOptions& options);
/// Parses what a peer sent: kCorruptData for missing or mistyped fields, then validate().
Result<PerfOptions> perf_options_from_json(const nlohmann::json& j);

/// Every field that differs, as "<field>: <mine> here, <theirs> on the peer" (empty: identical).
std::vector<std::string> differences(const PerfOptions& mine, const PerfOptions& theirs);

}  // namespace tern::ibbench
