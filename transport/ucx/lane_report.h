// What UCX selected for an endpoint, read from ucp_ep_print_info (UCX 1.13 has no query for the
// transports of an endpoint). A lane line looks like
//   #                 lane[0]:  3:sysv/memory.0 md[2]  -> md[2]/sysv/sysdev[255] am am_bw#0 keepalive
// ("resource index:transport/device.path  md  -> remote md/transport  roles").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tern::transport::ucx {

struct Lane {
  std::string transport;           ///< "sysv/memory", "tcp/lo", "rc_mlx5/mlx5_0:1"
  std::vector<std::string> roles;  ///< "am", "am_bw", "rma_bw", "keepalive", "wireup", ...
};

/// The lanes listed in ucp_ep_print_info output; lines it does not recognize are skipped.
std::vector<Lane> parse_lanes(std::string_view print_info);

/// "sysv/memory (am, am_bw, keepalive)".
std::string describe(const Lane& lane);

}  // namespace tern::transport::ucx
