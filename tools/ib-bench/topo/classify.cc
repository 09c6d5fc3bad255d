#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "report/table.h"
#include "topo/model.h"

namespace tern::ibbench {

std::string_view name(PathClass c) {
  switch (c) {
    case PathClass::kPcieSwitch:
      return "pcie-switch";
    case PathClass::kHostBridge:
      return "host-bridge";
    case PathClass::kNumaNode:
      return "numa-node";
    case PathClass::kCrossNuma:
      return "cross-numa";
    case PathClass::kCrossSocket:
      return "cross-socket";
  }
  return "?";
}

PathInfo path_between(const IoDevice& a, const IoDevice& b) {
  PathInfo info;
  for (std::size_t i = 0; i < a.path.size(); ++i) {
    for (std::size_t j = 0; j < b.path.size(); ++j) {
      if (a.path[i].id != b.path[j].id) continue;
      // First common bridge: i and j bridges lie below it on each side.
      info.bridges = static_cast<int>(i + j);
      if (a.path[i].host_bridge) {
        info.path_class = PathClass::kHostBridge;
        info.nccl = "PHB";
      } else {
        info.path_class = PathClass::kPcieSwitch;
        info.nccl = (i <= 1 && j <= 1) ? "PIX" : "PXB";
      }
      return info;
    }
  }
  info.bridges = static_cast<int>(a.path.size() + b.path.size());
  if (a.numa >= 0 && a.numa == b.numa) {
    info.path_class = PathClass::kNumaNode;
    info.nccl = "NODE";
  } else if (a.package >= 0 && a.package == b.package) {
    info.path_class = PathClass::kCrossNuma;
    info.nccl = "SYS";
  } else {
    info.path_class = PathClass::kCrossSocket;
    info.nccl = "SYS";
  }
  return info;
}

std::vector<GpuAffinity> classify(const Topology& topology) {
  std::vector<GpuAffinity> out;
  std::vector<int> load(topology.nics.size(), 0);
  for (const IoDevice& gpu : topology.gpus) {
    GpuAffinity a;
    a.gpu = &gpu;
    int best = -1;
    for (std::size_t n = 0; n < topology.nics.size(); ++n) {
      a.to_each_nic.push_back(path_between(gpu, topology.nics[n]));
      if (best < 0) {
        best = static_cast<int>(n);
        continue;
      }
      const PathInfo& p = a.to_each_nic.back();
      const PathInfo& q = a.to_each_nic[static_cast<std::size_t>(best)];
      // Bridges matter below a common switch or host bridge; past the root complex the traffic
      // crosses the same CPU fabric either way, and spreading GPUs over NICs matters more.
      const auto key = [&](const PathInfo& x, std::size_t nic) {
        const bool pci_local = x.path_class == PathClass::kPcieSwitch || x.path_class == PathClass::kHostBridge;
        return std::make_tuple(static_cast<int>(x.path_class), pci_local ? x.bridges : 0, load[nic], x.bridges,
                               topology.nics[nic].name);
      };
      if (key(p, n) < key(q, static_cast<std::size_t>(best))) best = static_cast<int>(n);
    }
    if (best >= 0) {
      a.nic = &topology.nics[static_cast<std::size_t>(best)];
      a.path = a.to_each_nic[static_cast<std::size_t>(best)];
      ++load[static_cast<std::size_t>(best)];
    }
    out.push_back(std::move(a));
  }
  return out;
}

namespace {
std::string or_dash(int v) { return v < 0 ? "-" : std::to_string(v); }
}  // namespace

nlohmann::json to_json(const Topology& t, const std::vector<GpuAffinity>& affinity) {
  auto device = [](const IoDevice& d) {
    nlohmann::json path = nlohmann::json::array();
    for (const PciHop& h : d.path) path.push_back(h.id);
    return nlohmann::json{{"name", d.name}, {"pci_busid", d.pci_busid}, {"pci_id", d.pci_id},
                          {"numa", d.numa}, {"package", d.package},     {"pci_path", path}};
  };
  nlohmann::json numa = nlohmann::json::array();
  for (const NumaNode& n : t.numa_nodes)
    numa.push_back(
        {{"os_index", n.os_index}, {"package", n.package}, {"cpus", n.cpus}, {"memory_bytes", n.memory_bytes}});
  nlohmann::json gpus = nlohmann::json::array();
  for (const GpuAffinity& a : affinity) {
    nlohmann::json g = device(*a.gpu);
    g["cuda_index"] = a.gpu->cuda_index;
    if (a.nic != nullptr) {
      g["closest_nic"] = {
          {"name", a.nic->name}, {"path", name(a.path.path_class)}, {"nccl", a.path.nccl}, {"bridges", a.path.bridges}};
    } else {
      g["closest_nic"] = nullptr;
    }
    nlohmann::json each = nlohmann::json::object();
    for (std::size_t n = 0; n < t.nics.size(); ++n) each[t.nics[n].name] = name(a.to_each_nic[n].path_class);
    g["paths"] = each;
    gpus.push_back(g);
  }
  nlohmann::json nics = nlohmann::json::array();
  for (const IoDevice& n : t.nics) nics.push_back(device(n));
  return {{"source", t.source}, {"packages", t.packages}, {"numa_nodes", numa}, {"gpus", gpus}, {"nics", nics}};
}

std::string format_topology(const Topology& t, const std::vector<GpuAffinity>& affinity) {
  std::string out = fmt::format("Topology of {}: {} package(s), {} NUMA node(s), {} GPU(s), {} RDMA NIC(s)\n\n",
                                t.source, t.packages, t.numa_nodes.size(), t.gpus.size(), t.nics.size());
  std::vector<std::vector<std::string>> rows{{"NUMA node", "package", "cpus", "memory"}};
  for (const NumaNode& n : t.numa_nodes)
    rows.push_back({std::to_string(n.os_index), or_dash(n.package), n.cpus,
                    fmt::format("{:.1f} GiB", static_cast<double>(n.memory_bytes) / (1024.0 * 1024 * 1024))});
  out += text_table(rows) + "\n";
  if (t.gpus.empty()) {
    out += "GPUs: none found (hwloc sees GPUs as PCI display controllers; none on this machine)\n";
  } else {
    rows = {{"GPU", "PCI bus id", "CUDA", "NUMA", "PCI id"}};
    for (std::size_t i = 0; i < t.gpus.size(); ++i)
      rows.push_back({std::to_string(i), t.gpus[i].pci_busid, or_dash(t.gpus[i].cuda_index), or_dash(t.gpus[i].numa),
                      t.gpus[i].pci_id});
    out += text_table(rows);
  }
  out += "\n";
  if (t.nics.empty()) {
    out += "RDMA NICs: none found\n";
  } else {
    rows = {{"NIC", "PCI bus id", "NUMA", "PCI id"}};
    for (const IoDevice& n : t.nics) rows.push_back({n.name, n.pci_busid, or_dash(n.numa), n.pci_id});
    out += text_table(rows);
  }
  if (t.gpus.empty() || t.nics.empty()) return out;

  out +=
      "\nGPU x NIC path (PIX/PXB: same PCIe switch, PHB: same host bridge, NODE: same NUMA node, SYS: across "
      "NUMA/sockets)\n";
  std::vector<std::string> header{""};
  for (const IoDevice& n : t.nics) header.push_back(n.name);
  rows = {header};
  for (std::size_t g = 0; g < affinity.size(); ++g) {
    std::vector<std::string> row{fmt::format("GPU{}", g)};
    for (const PathInfo& p : affinity[g].to_each_nic) row.push_back(p.nccl);
    rows.push_back(row);
  }
  out += text_table(rows);
  out += "\nClosest NIC per GPU (what ternd picks):\n";
  rows = {{"GPU", "PCI bus id", "NIC", "path"}};
  for (std::size_t g = 0; g < affinity.size(); ++g) {
    const GpuAffinity& a = affinity[g];
    rows.push_back({fmt::format("GPU{}", g), a.gpu->pci_busid, a.nic->name,
                    fmt::format("{} ({})", name(a.path.path_class), a.path.nccl)});
  }
  out += text_table(rows);
  return out;
}

}  // namespace tern::ibbench
