// perftest-style text output: the column headers ib_write_bw / ib_send_lat print, so operators
// (and their scripts) read ib-bench's rows the same way.
#pragma once

#include <string>
#include <vector>

#include "perf/stats.h"

namespace tern::ibbench {

/// The dashed rule perftest prints between sections.
std::string rule();
/// " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]"
std::string bw_header();
std::string bw_line(const BwRow& row);
/// " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec] ... 99.9% percentile[usec]"
std::string lat_header();
std::string lat_line(const LatRow& row);

/// Left-aligned columns: each column as wide as its widest cell plus two spaces.
std::string text_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace tern::ibbench
