// `ib-bench devices`: what libibverbs reports about each RDMA device, as plain values (the
// formatting helpers are pure functions, tested without hardware).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tern/common/status.h"

namespace tern::ibbench {

struct GidEntry {
  int index = 0;
  std::string gid;   ///< "fe80:0000:0000:0000:0202:c9ff:fe00:0001"
  std::string type;  ///< "IB", "RoCE v1", "RoCE v2"
};

struct PortInfo {
  int number = 0;
  std::string state;       ///< "ACTIVE", "DOWN", "INIT" (no subnet manager), ...
  std::string phys_state;  ///< "LinkUp", "Polling", "Disabled", ...
  std::string link_layer;  ///< "InfiniBand" | "Ethernet"
  std::string speed;       ///< "25.78125 Gb/s (EDR)"
  std::string width;       ///< "4X"
  double rate_gbps = 0;    ///< speed x width
  int active_mtu = 0;      ///< bytes
  int max_mtu = 0;
  int lid = 0;
  int sm_lid = 0;
  std::vector<GidEntry> gids;  ///< non-zero entries only
};

struct DeviceInfo {
  std::string name;       ///< "mlx5_0"
  std::string node_guid;  ///< "0c42:a103:0010:2b3c"
  std::string firmware;
  std::uint32_t vendor_id = 0;
  std::uint32_t vendor_part_id = 0;
  std::vector<PortInfo> ports;
};

/// Every device; fails with "no RDMA devices: ..." (is_no_rdma) when there are none.
Result<std::vector<DeviceInfo>> list_devices(const std::string& only_device = "");

// Pure helpers (exposed for tests).
std::string port_state_name(int state);       ///< IBV_PORT_* -> "ACTIVE"
std::string phys_state_name(int phys_state);  ///< 5 -> "LinkUp"
/// IB active_speed code -> {"25.78125 Gb/s (EDR)", 25.78125}; unknown codes -> {"unknown (N)", 0}.
std::pair<std::string, double> speed_name(int active_speed);
/// IB active_width code -> {"4X", 4}; unknown -> {"unknown (N)", 0}.
std::pair<std::string, int> width_name(int active_width);
int mtu_bytes(int ibv_mtu);  ///< IBV_MTU_4096 -> 4096
std::string format_guid(std::uint64_t guid_be);
std::string format_gid(const std::uint8_t (&raw)[16]);

nlohmann::json to_json(const DeviceInfo& device);
/// The text `ib-bench devices` prints.
std::string format_devices(const std::vector<DeviceInfo>& devices);

}  // namespace tern::ibbench
