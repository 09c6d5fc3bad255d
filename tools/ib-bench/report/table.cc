#include "report/table.h"

#include <fmt/format.h>

#include <algorithm>

namespace tern::ibbench {

std::string rule() { return std::string(87, '-'); }

std::string bw_header() {
  return fmt::format(" {:<10} {:<14} {:<18} {:<20} {}", "#bytes", "#iterations", "BW peak[MB/sec]",
                     "BW average[MB/sec]", "MsgRate[Mpps]");
}

std::string bw_line(const BwRow& r) {
  return fmt::format(" {:<10} {:<14} {:<18.2f} {:<20.2f} {:.6f}", r.bytes, r.iterations, r.bw_peak_mbs, r.bw_avg_mbs,
                     r.msg_rate_mpps);
}

std::string lat_header() {
  return fmt::format(" {:<7} {:<12} {:<14} {:<14} {:<16} {:<14} {:<16} {:<22} {}", "#bytes", "#iterations",
                     "t_min[usec]", "t_max[usec]", "t_typical[usec]", "t_avg[usec]", "t_stdev[usec]",
                     "99% percentile[usec]", "99.9% percentile[usec]");
}

std::string lat_line(const LatRow& r) {
  return fmt::format(" {:<7} {:<12} {:<14.2f} {:<14.2f} {:<16.2f} {:<14.2f} {:<16.2f} {:<22.2f} {:.2f}", r.bytes,
                     r.iterations, r.t_min, r.t_max, r.t_typical, r.t_avg, r.t_stdev, r.p99, r.p999);
}

std::string text_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace tern::ibbench
