// GPU -> NIC classification from the hwloc XML topologies in topologies/ (see make_topologies.py
// for the layouts), and from hand-built models for the classes the files don't reach.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "topo/hwloc_loader.h"
#include "topo/model.h"

namespace tern::ibbench {
namespace {

std::string topology_file(const char* name) { return std::string(IB_BENCH_TOPOLOGIES) + "/" + name; }

TEST(IbBenchTopologyXml, TwoSocketEightGpuFourNic) {
  auto t = load_topology(topology_file("two-socket-8gpu-4nic.xml"));
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->packages, 2);
  ASSERT_EQ(t->numa_nodes.size(), 2u);
  EXPECT_EQ(t->numa_nodes[1].cpus, "8-15");
  EXPECT_EQ(t->numa_nodes[1].package, 1);
  ASSERT_EQ(t->gpus.size(), 8u);
  ASSERT_EQ(t->nics.size(), 4u);  // the onboard Ethernet (no OpenFabrics device) is not an RDMA NIC
  for (int i = 0; i < 8; ++i) EXPECT_EQ(t->gpus[static_cast<std::size_t>(i)].cuda_index, i);
  EXPECT_EQ(t->gpus[0].pci_busid, "0000:03:00.0");
  EXPECT_EQ(t->gpus[0].pci_id, "10de:2330");
  EXPECT_EQ(t->gpus[4].numa, 1);
  EXPECT_EQ(t->nics[3].name, "mlx5_3");
  EXPECT_EQ(t->nics[3].package, 1);

  const auto affinity = classify(*t);
  ASSERT_EQ(affinity.size(), 8u);
  const std::vector<std::pair<std::string, std::string>> expected{
      {"mlx5_0", "PIX"}, {"mlx5_0", "PIX"}, {"mlx5_1", "PXB"},  {"mlx5_1", "PXB"},
      {"mlx5_2", "PIX"}, {"mlx5_2", "PIX"}, {"mlx5_3", "NODE"}, {"mlx5_3", "NODE"}};
  for (std::size_t g = 0; g < 8; ++g) {
    ASSERT_NE(affinity[g].nic, nullptr);
    EXPECT_EQ(affinity[g].nic->name, expected[g].first) << "GPU" << g;
    EXPECT_EQ(affinity[g].path.nccl, expected[g].second) << "GPU" << g;
  }
  EXPECT_EQ(affinity[0].path.path_class, PathClass::kPcieSwitch);
  EXPECT_EQ(affinity[6].path.path_class, PathClass::kNumaNode);
  // The full matrix row of GPU0: its switch, the other host bridge of socket 0, then socket 1.
  EXPECT_EQ(affinity[0].to_each_nic[1].path_class, PathClass::kNumaNode);
  EXPECT_EQ(affinity[0].to_each_nic[2].path_class, PathClass::kCrossSocket);
  EXPECT_EQ(affinity[0].to_each_nic[3].path_class, PathClass::kCrossSocket);

  const std::string text = format_topology(*t, affinity);
  EXPECT_NE(text.find("GPU6  0000:a3:00.0  mlx5_3  numa-node (NODE)"), std::string::npos) << text;
  const nlohmann::json j = to_json(*t, affinity);
  EXPECT_EQ(j["gpus"][2]["closest_nic"]["name"], "mlx5_1");
  EXPECT_EQ(j["gpus"][2]["paths"]["mlx5_2"], "cross-socket");
}

TEST(IbBenchTopologyXml, SimpleHostBridge) {
  auto t = load_topology(topology_file("simple-1gpu-1nic.xml"));
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  ASSERT_EQ(t->gpus.size(), 1u);
  ASSERT_EQ(t->nics.size(), 1u);
  EXPECT_EQ(t->gpus[0].cuda_index, -1);  // no CUDA OS device in the export, and it is not this machine
  const auto affinity = classify(*t);
  EXPECT_EQ(affinity[0].path.path_class, PathClass::kHostBridge);
  EXPECT_EQ(affinity[0].path.nccl, "PHB");
  EXPECT_EQ(affinity[0].path.bridges, 2);  // each device's root port
}

TEST(IbBenchTopologyXml, NoGpuNoNic) {
  auto t = load_topology(topology_file("no-gpu-vm.xml"));
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_TRUE(t->gpus.empty());
  EXPECT_TRUE(t->nics.empty());
  EXPECT_TRUE(classify(*t).empty());
  EXPECT_NE(format_topology(*t, {}).find("GPUs: none found"), std::string::npos);
}

TEST(IbBenchTopologyXml, BadFilesAreErrors) {
  EXPECT_EQ(load_topology("/nonexistent/topology.xml").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(load_topology(topology_file("make_topologies.py")).status().code(), StatusCode::kInvalidArgument);
}

TEST(IbBenchTopologyThisMachine, Loads) {
#if defined(__SANITIZE_ADDRESS__)
  // hwloc's pci plugin (libpciaccess) leaks its global state and is unloaded before LeakSanitizer
  // reports, so the leak cannot be suppressed by name: skip that one plugin under ASan.
  setenv("HWLOC_COMPONENTS", "-pci", 1);
#endif
  auto t = load_topology();
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_GE(t->numa_nodes.size(), 1u);
  EXPECT_EQ(t->source, "this machine");
}

IoDevice device(std::string name, std::vector<PciHop> path, int numa, int package) {
  IoDevice d;
  d.name = std::move(name);
  d.path = std::move(path);
  d.numa = numa;
  d.package = package;
  return d;
}

TEST(IbBenchClassify, EveryClass) {
  const PciHop hb0{true, "hostbridge 0000:[00-3f]"}, hb1{true, "hostbridge 0000:[40-7f]"};
  const PciHop sw_up{false, "0000:01:00.0"}, down_a{false, "0000:02:00.0"}, down_b{false, "0000:02:01.0"};
  const IoDevice gpu = device("gpu", {down_a, sw_up, hb0}, 0, 0);
  EXPECT_EQ(path_between(gpu, device("n", {down_b, sw_up, hb0}, 0, 0)).nccl, "PIX");
  EXPECT_EQ(
      path_between(gpu, device("n", {{false, "0000:05:00.0"}, {false, "0000:04:00.0"}, down_b, sw_up, hb0}, 0, 0)).nccl,
      "PXB");
  EXPECT_EQ(path_between(gpu, device("n", {{false, "0000:00:02.0"}, hb0}, 0, 0)).path_class, PathClass::kHostBridge);
  EXPECT_EQ(path_between(gpu, device("n", {hb1}, 0, 0)).path_class, PathClass::kNumaNode);
  EXPECT_EQ(path_between(gpu, device("n", {hb1}, 1, 0)).path_class, PathClass::kCrossNuma);  // SNC: same socket
  EXPECT_EQ(path_between(gpu, device("n", {hb1}, 1, 1)).path_class, PathClass::kCrossSocket);
  EXPECT_EQ(path_between(gpu, device("n", {hb1}, -1, -1)).path_class, PathClass::kCrossSocket);  // unknown locality
}

TEST(IbBenchClassify, EquallyCloseNicsShareTheGpus) {
  Topology t;
  const PciHop hb0{true, "hb0"}, hb1{true, "hb1"}, hb2{true, "hb2"};
  t.nics = {device("mlx5_0", {hb1}, 0, 0), device("mlx5_1", {hb2}, 0, 0)};
  t.gpus = {device("g0", {hb0}, 0, 0), device("g1", {hb0}, 0, 0), device("g2", {hb0}, 0, 0), device("g3", {hb0}, 0, 0)};
  const auto a = classify(t);
  std::map<std::string, int> per_nic;
  for (const auto& g : a) ++per_nic[g.nic->name];
  EXPECT_EQ(per_nic["mlx5_0"], 2);
  EXPECT_EQ(per_nic["mlx5_1"], 2);
  t.nics.clear();
  const auto none = classify(t);
  ASSERT_EQ(none.size(), 4u);
  EXPECT_EQ(none[0].nic, nullptr);
}

}  // namespace
}  // namespace tern::ibbench
