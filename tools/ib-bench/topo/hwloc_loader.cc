#include "topo/hwloc_loader.h"

#include <hwloc.h>

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <memory>

#include "topo/cuda_probe.h"

namespace tern::ibbench {

namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using HwlocTopology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

std::string busid(const hwloc_obj* pci) {
  const auto& a = pci->attr->pcidev;
  return fmt::format("{:04x}:{:02x}:{:02x}.{:01x}", a.domain, a.bus, a.dev, a.func);
}

bool is_gpu(const hwloc_obj* pci) {
  const auto& a = pci->attr->pcidev;
  const unsigned base_class = a.class_id >> 8;  // 0x03: display controller (0x0300 VGA, 0x0302 3D)
  return base_class == 0x03 && (a.vendor_id == 0x10de || a.vendor_id == 0x1002);
}

// The bridges above a PCI device and its locality (I/O objects don't support the cpuset helpers:
// walk ->parent, as environment.md notes).
IoDevice describe(hwloc_topology* topo, hwloc_obj* pci) {
  IoDevice d;
  d.pci_busid = busid(pci);
  d.pci_id = fmt::format("{:04x}:{:04x}", pci->attr->pcidev.vendor_id, pci->attr->pcidev.device_id);
  for (hwloc_obj* p = pci->parent; p != nullptr && p->type == HWLOC_OBJ_BRIDGE; p = p->parent) {
    const auto& b = p->attr->bridge;
    if (b.upstream_type == HWLOC_OBJ_BRIDGE_HOST) {
      d.path.push_back({true, fmt::format("hostbridge {:04x}:[{:02x}-{:02x}]", b.downstream.pci.domain,
                                          b.downstream.pci.secondary_bus, b.downstream.pci.subordinate_bus)});
    } else {
      d.path.push_back({false, busid(p)});
    }
  }
  hwloc_obj* anchor = hwloc_get_non_io_ancestor_obj(topo, pci);
  if (anchor != nullptr && anchor->nodeset != nullptr && hwloc_bitmap_weight(anchor->nodeset) == 1)
    d.numa = hwloc_bitmap_first(anchor->nodeset);
  for (hwloc_obj* p = anchor; p != nullptr; p = p->parent)
    if (p->type == HWLOC_OBJ_PACKAGE) {
      d.package = static_cast<int>(p->os_index);
      break;
    }
  // A package holding exactly one NUMA node makes the device local to it even when hwloc
  // attached the I/O tree to the package itself.
  return d;
}

int cuda_index_from_osdev(const hwloc_obj* pci) {
  for (const hwloc_obj* c = pci->io_first_child; c != nullptr; c = c->next_sibling) {
    if (c->type != HWLOC_OBJ_OS_DEVICE || c->name == nullptr) continue;
    const std::string name = c->name;
    if (name.rfind("cuda", 0) == 0 && name.size() > 4) return std::atoi(name.c_str() + 4);
  }
  return -1;
}

}  // namespace

Result<Topology> load_topology(const std::string& xml_path) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) return unavailable("hwloc_topology_init failed");
  HwlocTopology topo(raw);
  // hwloc's default filter drops every I/O object.
  hwloc_topology_set_io_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (!xml_path.empty()) {
    if (!std::ifstream(xml_path).good())
      return invalid_argument(fmt::format("cannot read topology file '{}'", xml_path));
    if (hwloc_topology_set_xml(raw, xml_path.c_str()) != 0)
      return invalid_argument(fmt::format("'{}' is not an hwloc XML topology", xml_path));
  }
  if (hwloc_topology_load(raw) != 0)
    return xml_path.empty()
               ? unavailable("hwloc could not load this machine's topology")
               : invalid_argument(fmt::format("hwloc could not load '{}' (not an hwloc 2 XML export?)", xml_path));

  Topology t;
  t.source = xml_path.empty() ? "this machine" : xml_path;
  t.packages = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_PACKAGE);
  for (hwloc_obj* n = hwloc_get_next_obj_by_type(raw, HWLOC_OBJ_NUMANODE, nullptr); n != nullptr;
       n = hwloc_get_next_obj_by_type(raw, HWLOC_OBJ_NUMANODE, n)) {
    NumaNode node;
    node.os_index = static_cast<int>(n->os_index);
    node.memory_bytes = n->attr->numanode.local_memory;
    char* cpus = nullptr;
    if (n->cpuset != nullptr && hwloc_bitmap_list_asprintf(&cpus, n->cpuset) >= 0) {
      node.cpus = cpus;
      std::free(cpus);
    }
    for (hwloc_obj* p = n->parent; p != nullptr; p = p->parent)
      if (p->type == HWLOC_OBJ_PACKAGE) {
        node.package = static_cast<int>(p->os_index);
        break;
      }
    t.numa_nodes.push_back(node);
  }

  const std::map<std::string, int> cuda = xml_path.empty() ? cuda_devices_by_busid() : std::map<std::string, int>{};
  for (hwloc_obj* pci = hwloc_get_next_pcidev(raw, nullptr); pci != nullptr; pci = hwloc_get_next_pcidev(raw, pci)) {
    if (!is_gpu(pci)) continue;
    IoDevice gpu = describe(raw, pci);
    gpu.name = gpu.pci_busid;
    gpu.cuda_index = cuda_index_from_osdev(pci);
    if (auto it = cuda.find(gpu.pci_busid); gpu.cuda_index < 0 && it != cuda.end()) gpu.cuda_index = it->second;
    t.gpus.push_back(std::move(gpu));
  }
  for (hwloc_obj* os = hwloc_get_next_osdev(raw, nullptr); os != nullptr; os = hwloc_get_next_osdev(raw, os)) {
    if (os->attr->osdev.type != HWLOC_OBJ_OSDEV_OPENFABRICS) continue;
    hwloc_obj* pci = os->parent;
    while (pci != nullptr && pci->type != HWLOC_OBJ_PCI_DEVICE) pci = pci->parent;
    if (pci == nullptr) continue;
    IoDevice nic = describe(raw, pci);
    nic.name = os->name != nullptr ? os->name : nic.pci_busid;
    t.nics.push_back(std::move(nic));
  }
  return t;
}

}  // namespace tern::ibbench
