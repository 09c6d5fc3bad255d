#include "perf/stats.h"

#include <algorithm>
#include <cmath>

namespace tern::ibbench {

namespace {
constexpr double kMB = 1024.0 * 1024.0;
}

BwRow bw_row(std::size_t bytes, std::uint64_t messages, double seconds, const std::vector<Checkpoint>& checkpoints) {
  BwRow row;
  row.bytes = bytes;
  row.iterations = messages;
  if (seconds <= 0) return row;
  const double b = static_cast<double>(bytes);
  row.bw_avg_mbs = b * static_cast<double>(messages) / seconds / kMB;
  row.msg_rate_mpps = static_cast<double>(messages) / seconds / 1e6;
  // Completions arrive in bursts (one progress call can finish many messages), so two checkpoints
  // close in time say nothing about the link: only stretches of at least 1/8 of the run count.
  const double min_dt = seconds / 8;
  double peak = row.bw_avg_mbs;
  for (std::size_t i = 0; i < checkpoints.size(); ++i) {
    for (std::size_t j = i + 1; j < checkpoints.size(); ++j) {
      const double dt = checkpoints[j].seconds - checkpoints[i].seconds;
      if (dt < min_dt) continue;
      const auto dm = checkpoints[j].messages - checkpoints[i].messages;
      peak = std::max(peak, b * static_cast<double>(dm) / dt / kMB);
      break;  // the shortest qualifying stretch from i
    }
  }
  row.bw_peak_mbs = peak;
  return row;
}

BwRow add_directions(const BwRow& a, const BwRow& b) {
  BwRow sum = a;
  sum.iterations = a.iterations + b.iterations;
  sum.bw_peak_mbs = a.bw_peak_mbs + b.bw_peak_mbs;
  sum.bw_avg_mbs = a.bw_avg_mbs + b.bw_avg_mbs;
  sum.msg_rate_mpps = a.msg_rate_mpps + b.msg_rate_mpps;
  return sum;
}

double percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  // The epsilon keeps 99.9% of 1000 at rank 999 despite 99.9 / 100 * 1000 = 999.0000000000001.
  const double rank = std::ceil(p * static_cast<double>(sorted.size()) / 100.0 - 1e-9);
  const auto index = static_cast<std::size_t>(std::clamp(rank, 1.0, static_cast<double>(sorted.size()))) - 1;
  return sorted[index];
}

LatRow lat_row(std::size_t bytes, std::vector<double>& samples_us) {
  LatRow row;
  row.bytes = bytes;
  row.iterations = samples_us.size();
  if (samples_us.empty()) return row;
  std::sort(samples_us.begin(), samples_us.end());
  const double n = static_cast<double>(samples_us.size());
  double sum = 0;
  for (double v : samples_us) sum += v;
  const double mean = sum / n;
  double var = 0;
  for (double v : samples_us) var += (v - mean) * (v - mean);
  row.t_min = samples_us.front();
  row.t_max = samples_us.back();
  row.t_typical = percentile_sorted(samples_us, 50);
  row.t_avg = mean;
  row.t_stdev = std::sqrt(var / n);
  row.p99 = percentile_sorted(samples_us, 99);
  row.p999 = percentile_sorted(samples_us, 99.9);
  return row;
}

}  // namespace tern::ibbench
