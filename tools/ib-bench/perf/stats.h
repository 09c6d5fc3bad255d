// The numbers a bw/lat row reports, computed from raw measurements (pure functions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tern::ibbench {

/// One bandwidth row. MB is 2^20 bytes, as perftest and ucx_perftest print it.
struct BwRow {
  std::size_t bytes = 0;
  std::uint64_t iterations = 0;  ///< messages sent (sum of both sides with -b)
  double bw_peak_mbs = 0;        ///< best checkpoint interval of the run
  double bw_avg_mbs = 0;         ///< whole run: first send to the receiver's acknowledgement
  double msg_rate_mpps = 0;      ///< million messages per second
};

/// One latency row, one-way (half the round trip), microseconds.
struct LatRow {
  std::size_t bytes = 0;
  std::uint64_t iterations = 0;
  double t_min = 0, t_max = 0, t_typical = 0, t_avg = 0, t_stdev = 0, p99 = 0, p999 = 0;
};

/// A sender's progress mark: `messages` completed by `seconds` after the start.
struct Checkpoint {
  std::uint64_t messages = 0;
  double seconds = 0;
};

/// What the sending half of one side measured in a bw round (zeros when it did not send).
struct BwSideResult {
  std::uint64_t messages = 0;
  double seconds = 0;                        ///< first send to the receiver's acknowledgement
  std::vector<Checkpoint> checkpoints;       ///< sender completions (local buffer reusable)
  std::vector<Checkpoint> recv_checkpoints;  ///< this side's receiving half: messages arrived
};

/// A bandwidth row from one direction: `messages` of `bytes` in `seconds`; the peak is the best
/// rate over a stretch between two checkpoints lasting at least 1/8 of `seconds` (never below the
/// average; the average when no stretch qualifies).
/// Pass the receiver's checkpoints: sender completions over TCP only mean "copied to the socket".
BwRow bw_row(std::size_t bytes, std::uint64_t messages, double seconds, const std::vector<Checkpoint>& checkpoints);

/// The two directions of a bidirectional run added up (bytes must match).
BwRow add_directions(const BwRow& a, const BwRow& b);

/// A latency row from per-iteration one-way times in microseconds (sorted in place). t_typical is
/// the median; percentiles are nearest-rank; stdev is the population deviation. Empty: all zero.
LatRow lat_row(std::size_t bytes, std::vector<double>& samples_us);

/// Nearest-rank percentile of sorted values (p in (0, 100]).
double percentile_sorted(const std::vector<double>& sorted, double p);

}  // namespace tern::ibbench
