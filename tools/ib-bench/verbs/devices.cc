#include "verbs/devices.h"

#include <endian.h>
#include <infiniband/verbs.h>

#include <fmt/format.h>

#include <cstring>

#include "verbs/verbs_raii.h"

namespace tern::ibbench {

std::string port_state_name(int state) {
  switch (state) {
    case IBV_PORT_NOP:
      return "NOP";
    case IBV_PORT_DOWN:
      return "DOWN";
    case IBV_PORT_INIT:
      return "INIT";
    case IBV_PORT_ARMED:
      return "ARMED";
    case IBV_PORT_ACTIVE:
      return "ACTIVE";
    case IBV_PORT_ACTIVE_DEFER:
      return "ACTIVE_DEFER";
    default:
      return fmt::format("unknown ({})", state);
  }
}

std::string phys_state_name(int phys_state) {
  switch (phys_state) {
    case 1:
      return "Sleep";
    case 2:
      return "Polling";
    case 3:
      return "Disabled";
    case 4:
      return "PortConfigurationTraining";
    case 5:
      return "LinkUp";
    case 6:
      return "LinkErrorRecovery";
    case 7:
      return "PhyTest";
    default:
      return fmt::format("unknown ({})", phys_state);
  }
}

std::pair<std::string, double> speed_name(int active_speed) {
  switch (active_speed) {
    case 1:
      return {"2.5 Gb/s (SDR)", 2.5};
    case 2:
      return {"5.0 Gb/s (DDR)", 5.0};
    case 4:
      return {"10.0 Gb/s (QDR)", 10.0};
    case 8:
      return {"10.3125 Gb/s (FDR10)", 10.3125};
    case 16:
      return {"14.0625 Gb/s (FDR)", 14.0625};
    case 32:
      return {"25.78125 Gb/s (EDR)", 25.78125};
    case 64:
      return {"53.125 Gb/s (HDR)", 53.125};
    case 128:
      return {"106.25 Gb/s (NDR)", 106.25};
    default:
      return {fmt::format("unknown ({})", active_speed), 0};
  }
}

std::pair<std::string, int> width_name(int active_width) {
  switch (active_width) {
    case 1:
      return {"1X", 1};
    case 2:
      return {"4X", 4};
    case 4:
      return {"8X", 8};
    case 8:
      return {"12X", 12};
    case 16:
      return {"2X", 2};
    default:
      return {fmt::format("unknown ({})", active_width), 0};
  }
}

int mtu_bytes(int ibv_mtu) {
  switch (ibv_mtu) {
    case IBV_MTU_256:
      return 256;
    case IBV_MTU_512:
      return 512;
    case IBV_MTU_1024:
      return 1024;
    case IBV_MTU_2048:
      return 2048;
    case IBV_MTU_4096:
      return 4096;
    default:
      return 0;
  }
}

std::string format_guid(std::uint64_t guid_be) {
  const std::uint64_t g = be64toh(guid_be);
  return fmt::format("{:04x}:{:04x}:{:04x}:{:04x}", (g >> 48) & 0xffff, (g >> 32) & 0xffff, (g >> 16) & 0xffff,
                     g & 0xffff);
}

std::string format_gid(const std::uint8_t (&raw)[16]) {
  std::string out;
  for (int i = 0; i < 16; i += 2) {
    if (i) out += ':';
    out += fmt::format("{:02x}{:02x}", raw[i], raw[i + 1]);
  }
  return out;
}

namespace {

std::string gid_type_name(unsigned type) {
  switch (type) {
    case IBV_GID_TYPE_IB:
      return "IB";
    case IBV_GID_TYPE_ROCE_V1:
      return "RoCE v1";
    case IBV_GID_TYPE_ROCE_V2:
      return "RoCE v2";
    default:
      return fmt::format("unknown ({})", type);
  }
}

PortInfo query_port(ibv_context* ctx, int number) {
  PortInfo p;
  p.number = number;
  ibv_port_attr attr{};
  if (ibv_query_port(ctx, static_cast<std::uint8_t>(number), &attr) != 0) {
    p.state = "unreadable";
    return p;
  }
  p.state = port_state_name(attr.state);
  p.phys_state = phys_state_name(attr.phys_state);
  p.link_layer = attr.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "InfiniBand";
  const auto [speed, gbps] = speed_name(attr.active_speed);
  const auto [width, lanes] = width_name(attr.active_width);
  p.speed = speed;
  p.width = width;
  p.rate_gbps = gbps * lanes;
  p.active_mtu = mtu_bytes(attr.active_mtu);
  p.max_mtu = mtu_bytes(attr.max_mtu);
  p.lid = attr.lid;
  p.sm_lid = attr.sm_lid;
  for (int i = 0; i < attr.gid_tbl_len; ++i) {
    ibv_gid_entry entry{};
    if (ibv_query_gid_ex(ctx, static_cast<std::uint32_t>(number), static_cast<std::uint32_t>(i), &entry, 0) != 0)
      continue;
    std::uint8_t raw[16];
    std::memcpy(raw, entry.gid.raw, sizeof raw);
    bool zero = true;
    for (std::uint8_t b : raw) zero = zero && b == 0;
    if (zero) continue;
    p.gids.push_back({i, format_gid(raw), gid_type_name(entry.gid_type)});
  }
  return p;
}

}  // namespace

Result<std::vector<DeviceInfo>> list_devices(const std::string& only_device) {
  TERN_ASSIGN_OR_RETURN(DeviceList list, DeviceList::get());
  if (!only_device.empty()) TERN_CHECK(list.find(only_device));
  std::vector<DeviceInfo> out;
  for (ibv_device* dev : list.devices()) {
    if (!only_device.empty() && only_device != ibv_get_device_name(dev)) continue;
    TERN_ASSIGN_OR_RETURN(DeviceContext ctx, open_device(dev));
    ibv_device_attr attr{};
    if (const int rc = ibv_query_device(ctx.get(), &attr); rc != 0)
      return unavailable(fmt::format("ibv_query_device({}): {}", ibv_get_device_name(dev), std::strerror(rc)));
    DeviceInfo info;
    info.name = ibv_get_device_name(dev);
    info.node_guid = format_guid(attr.node_guid);
    info.firmware = attr.fw_ver;
    info.vendor_id = attr.vendor_id;
    info.vendor_part_id = attr.vendor_part_id;
    for (int port = 1; port <= attr.phys_port_cnt; ++port) info.ports.push_back(query_port(ctx.get(), port));
    out.push_back(std::move(info));
  }
  return out;
}

nlohmann::json to_json(const DeviceInfo& d) {
  nlohmann::json ports = nlohmann::json::array();
  for (const PortInfo& p : d.ports) {
    nlohmann::json gids = nlohmann::json::array();
    for (const GidEntry& g : p.gids) gids.push_back({{"index", g.index}, {"gid", g.gid}, {"type", g.type}});
    ports.push_back({{"port", p.number},
                     {"state", p.state},
                     {"phys_state", p.phys_state},
                     {"link_layer", p.link_layer},
                     {"speed", p.speed},
                     {"width", p.width},
                     {"rate_gbps", p.rate_gbps},
                     {"active_mtu", p.active_mtu},
                     {"max_mtu", p.max_mtu},
                     {"lid", p.lid},
                     {"sm_lid", p.sm_lid},
                     {"gids", gids}});
  }
  return {{"name", d.name},           {"node_guid", d.node_guid},           {"firmware", d.firmware},
          {"vendor_id", d.vendor_id}, {"vendor_part_id", d.vendor_part_id}, {"ports", ports}};
}

std::string format_devices(const std::vector<DeviceInfo>& devices) {
  std::string out;
  for (const DeviceInfo& d : devices) {
    out += fmt::format("{}  node GUID {}  firmware {}  vendor 0x{:x} part {}\n", d.name, d.node_guid, d.firmware,
                       d.vendor_id, d.vendor_part_id);
    for (const PortInfo& p : d.ports) {
      out += fmt::format("  port {}: {} ({})  {}  {} x {} = {:g} Gb/s  MTU {} (max {})  LID {}  SM LID {}\n", p.number,
                         p.state, p.phys_state, p.link_layer, p.width, p.speed, p.rate_gbps, p.active_mtu, p.max_mtu,
                         p.lid, p.sm_lid);
      for (const GidEntry& g : p.gids) out += fmt::format("    GID[{:>3}] {}  {}\n", g.index, g.gid, g.type);
    }
  }
  return out;
}

}  // namespace tern::ibbench
