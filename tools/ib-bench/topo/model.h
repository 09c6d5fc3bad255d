// The machine's I/O layout as plain values (GPUs, RDMA NICs, NUMA nodes and the PCI path of each
// device), and the classification of the path between a GPU and a NIC. Built from hwloc
// (topo/hwloc_loader.h) or by hand in tests; classify() is a pure function of it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tern::ibbench {

/// How close two PCI devices are, closest first. NCCL's names in parentheses.
enum class PathClass {
  kPcieSwitch,   ///< below one PCIe switch (PIX: one switch, PXB: several): peer-to-peer at full speed
  kHostBridge,   ///< same PCIe host bridge / root complex, no common switch (PHB)
  kNumaNode,     ///< different host bridges of one NUMA node (NODE)
  kCrossNuma,    ///< different NUMA nodes of one socket (SNC/NPS) (SYS)
  kCrossSocket,  ///< across the inter-socket link (SYS)
};

std::string_view name(PathClass c);  ///< "pcie-switch", "host-bridge", "numa-node", "cross-numa", "cross-socket"

/// One PCI bridge above a device.
struct PciHop {
  bool host_bridge = false;  ///< the root complex's host bridge (else a switch port / root port)
  std::string id;            ///< bus id of a bridge, "hostbridge 0000:[20-3f]" for a host bridge
};

struct IoDevice {
  std::string name;          ///< NIC: "mlx5_0"; GPU: its PCI bus id
  std::string pci_busid;     ///< "0000:07:00.0"
  std::string pci_id;        ///< "10de:2330" (vendor:device)
  std::vector<PciHop> path;  ///< bridges from the device's parent upwards
  int numa = -1;             ///< NUMA node (os index) local to the device; -1 unknown
  int package = -1;          ///< socket (os index); -1 unknown
  int cuda_index = -1;       ///< GPUs: CUDA device index when known
};

struct NumaNode {
  int os_index = 0;
  int package = -1;
  std::string cpus;  ///< "0-31,64-95"
  unsigned long long memory_bytes = 0;
};

struct Topology {
  std::string source;  ///< "this machine" or the XML file
  int packages = 0;
  std::vector<NumaNode> numa_nodes;
  std::vector<IoDevice> gpus;
  std::vector<IoDevice> nics;
};

/// The class of the path between two devices, and how many bridges it crosses.
struct PathInfo {
  PathClass path_class = PathClass::kCrossSocket;
  int bridges = 0;   ///< switch/root-port bridges crossed below the common point (PCI only)
  std::string nccl;  ///< "PIX", "PXB", "PHB", "NODE", "SYS"
};

PathInfo path_between(const IoDevice& a, const IoDevice& b);

/// One GPU's choice.
struct GpuAffinity {
  const IoDevice* gpu = nullptr;
  const IoDevice* nic = nullptr;  ///< null when the machine has no RDMA NIC
  PathInfo path;
  std::vector<PathInfo> to_each_nic;  ///< in topology.nics order
};

/// For every GPU (in order), the closest NIC: the best class; within a PCIe switch or host bridge
/// the fewest bridges; then the NIC with the fewest GPUs already given to it (equally close NICs
/// share the GPUs); then the fewest bridges, then the name. This is the NIC ternd binds the GPU's
/// rank to.
std::vector<GpuAffinity> classify(const Topology& topology);

nlohmann::json to_json(const Topology& topology, const std::vector<GpuAffinity>& affinity);
/// The text `ib-bench topo` prints (lists, the GPU x NIC matrix, the picks).
std::string format_topology(const Topology& topology, const std::vector<GpuAffinity>& affinity);

}  // namespace tern::ibbench
