// The doctor's checks on fake /proc and /sys trees written by each test under a temporary root.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "doctor/checks.h"

namespace tern::ibbench {
namespace {

namespace fs = std::filesystem;

class IbBenchFakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ib-bench-doctor-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    in_.root = root_;
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& rel, const std::string& text) {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
  }
  void write_bytes(const std::string& rel, const std::vector<unsigned char>& bytes) {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  void port(const std::string& dev, int n, const std::string& state, const std::string& phys,
            const std::string& layer) {
    const std::string base = "sys/class/infiniband/" + dev + "/ports/" + std::to_string(n) + "/";
    write(base + "state", state + "\n");
    write(base + "phys_state", phys + "\n");
    write(base + "link_layer", layer + "\n");
    write(base + "rate", "400 Gb/sec (4X NDR)\n");
  }
  // A PCI bridge whose extended config space holds an ACS capability with control `ctrl`
  // (after an unrelated capability, to exercise the list walk).
  void bridge(const std::string& bdf, int ctrl) {
    std::vector<unsigned char> cfg(4096, 0);
    // 0x100: AER (id 0x0001), next at 0x150
    cfg[0x100] = 0x01;
    cfg[0x102] = 0x01;
    cfg[0x103] = 0x15;  // next offset 0x150 << 4 in bits 31..20
    cfg[0x150] = 0x0d;  // ACS, version 1, next 0
    cfg[0x152] = 0x01;
    cfg[0x156] = static_cast<unsigned char>(ctrl & 0xff);
    cfg[0x157] = static_cast<unsigned char>(ctrl >> 8);
    write_bytes("sys/bus/pci/devices/" + bdf + "/config", cfg);
    write("sys/bus/pci/devices/" + bdf + "/class", "0x060400\n");
  }

  fs::path root_;
  DoctorInputs in_;
};

TEST_F(IbBenchFakeRoot, GpuDirectModule) {
  write("proc/modules", "nvidia_uvm 1 0 - Live 0x0\nnvidia 2 1 nvidia_uvm, Live 0x0\n");
  CheckResult r = check_gpudirect_rdma(in_);
  EXPECT_EQ(r.status, CheckStatus::kFail);
  EXPECT_NE(r.fix.find("modprobe nvidia-peermem"), std::string::npos);
  write("proc/modules", "nvidia_peermem 16384 0 - Live 0x0\nnvidia 2 1 nvidia_peermem, Live 0x0\n");
  r = check_gpudirect_rdma(in_);
  EXPECT_EQ(r.status, CheckStatus::kPass) << r.message;
  write("proc/modules", "ext4 1 0 - Live 0x0\n");
  EXPECT_EQ(check_gpudirect_rdma(in_).status, CheckStatus::kWarn);  // no GPU driver at all
  write("proc/modules", "nv_peer_mem 1 0 - Live 0x0\n");
  EXPECT_EQ(check_gpudirect_rdma(in_).status, CheckStatus::kPass);
}

TEST_F(IbBenchFakeRoot, DmaBuf) {
  write("proc/sys/kernel/osrelease", "5.4.0-150-generic\n");
  EXPECT_EQ(check_dmabuf(in_).status, CheckStatus::kWarn);
  write("proc/sys/kernel/osrelease", "6.5.0-35-generic\n");
  write("proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n");
  CheckResult r = check_dmabuf(in_);
  EXPECT_EQ(r.status, CheckStatus::kWarn);
  EXPECT_NE(r.fix.find("open kernel modules"), std::string::npos);
  write("proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15\n");
  r = check_dmabuf(in_);
  EXPECT_EQ(r.status, CheckStatus::kPass) << r.message;
}

TEST(IbBenchDoctor, Memlock) {
  EXPECT_EQ(check_memlock({true, 0}).status, CheckStatus::kPass);
  const CheckResult low = check_memlock({false, 8u << 20});
  EXPECT_EQ(low.status, CheckStatus::kFail);
  EXPECT_NE(low.fix.find("memlock unlimited"), std::string::npos);
  EXPECT_EQ(check_memlock({false, 16ull << 30}).status, CheckStatus::kWarn);
}

TEST(IbBenchDoctor, UcxTransportsAndMemoryTypes) {
  UcxFacts tcp{"1.13.1", {"self/memory0", "tcp/lo", "sysv/memory"}, {"host"}};
  EXPECT_EQ(check_ucx_transports(tcp).status, CheckStatus::kFail);
  UcxFacts ib{"1.16.0", {"tcp/ib0", "rc_mlx5/mlx5_0:1", "dc_mlx5/mlx5_0:1"}, {"host", "cuda", "cuda_managed"}};
  const CheckResult r = check_ucx_transports(ib);
  EXPECT_EQ(r.status, CheckStatus::kPass);
  EXPECT_NE(r.message.find("rc_mlx5/mlx5_0:1"), std::string::npos);
  EXPECT_EQ(check_ucx_memory_types(tcp, false).status, CheckStatus::kPass);
  EXPECT_EQ(check_ucx_memory_types(tcp, true).status, CheckStatus::kFail);
  EXPECT_EQ(check_ucx_memory_types(ib, true).status, CheckStatus::kPass);
}

TEST_F(IbBenchFakeRoot, Hugepages) {
  write("proc/meminfo", "MemTotal: 100 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n");
  write("sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]\n");
  EXPECT_EQ(check_hugepages(in_).status, CheckStatus::kWarn);
  write("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n");
  EXPECT_EQ(check_hugepages(in_).status, CheckStatus::kPass);
  write("proc/meminfo", "HugePages_Total:    1024\nHugepagesize:       2048 kB\n");
  const CheckResult r = check_hugepages(in_);
  EXPECT_EQ(r.status, CheckStatus::kPass);
  EXPECT_NE(r.message.find("1024 hugepages of 2048 kB"), std::string::npos) << r.message;
}

TEST_F(IbBenchFakeRoot, RdmaPorts) {
  CheckResult r = check_rdma_ports(in_);
  EXPECT_EQ(r.status, CheckStatus::kFail);
  EXPECT_NE(r.message.find("no RDMA devices"), std::string::npos);
  port("mlx5_0", 1, "4: ACTIVE", "5: LinkUp", "InfiniBand");
  port("mlx5_1", 1, "4: ACTIVE", "5: LinkUp", "Ethernet");
  r = check_rdma_ports(in_);
  EXPECT_EQ(r.status, CheckStatus::kPass) << r.message;
  EXPECT_NE(r.message.find("mlx5_1 port 1 ACTIVE Ethernet"), std::string::npos) << r.message;
  port("mlx5_2", 1, "2: INIT", "5: LinkUp", "InfiniBand");
  r = check_rdma_ports(in_);
  EXPECT_EQ(r.status, CheckStatus::kFail);
  EXPECT_NE(r.message.find("mlx5_2 port 1 2: INIT"), std::string::npos) << r.message;
  EXPECT_NE(r.fix.find("subnet manager"), std::string::npos);
  port("mlx5_2", 1, "1: DOWN", "3: Disabled", "Ethernet");
  r = check_rdma_ports(in_);
  EXPECT_NE(r.fix.find("cables"), std::string::npos) << r.fix;
}

TEST_F(IbBenchFakeRoot, Iommu) {
  write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1\n");
  EXPECT_EQ(check_iommu(in_).status, CheckStatus::kPass);  // no /sys/class/iommu entries
  fs::create_directories(root_ / "sys/class/iommu/dmar0");
  CheckResult r = check_iommu(in_);
  EXPECT_EQ(r.status, CheckStatus::kWarn);
  EXPECT_NE(r.fix.find("iommu=pt"), std::string::npos);
  write("proc/cmdline", "BOOT_IMAGE=/vmlinuz intel_iommu=on iommu=pt\n");
  EXPECT_EQ(check_iommu(in_).status, CheckStatus::kPass);
}

TEST_F(IbBenchFakeRoot, PciAcs) {
  EXPECT_EQ(check_pci_acs(in_).status, CheckStatus::kPass);
  bridge("0000:01:00.0", 0x0000);
  bridge("0000:02:00.0", 0x0001);  // source validation only: harmless
  CheckResult r = check_pci_acs(in_);
  EXPECT_EQ(r.status, CheckStatus::kPass) << r.message;
  EXPECT_NE(r.message.find("2 PCI bridge(s)"), std::string::npos) << r.message;
  bridge("0000:02:01.0", 0x001d);  // request + completion redirect
  r = check_pci_acs(in_);
  EXPECT_EQ(r.status, CheckStatus::kWarn);
  EXPECT_NE(r.message.find("0000:02:01.0"), std::string::npos) << r.message;
  EXPECT_NE(r.fix.find("setpci -s 0000:02:01.0"), std::string::npos) << r.fix;
  // A device that is not a bridge is ignored.
  write("sys/bus/pci/devices/0000:03:00.0/class", "0x030200\n");
  EXPECT_EQ(check_pci_acs(in_).status, CheckStatus::kWarn);
}

TEST_F(IbBenchFakeRoot, WholeDoctorOnAHealthyGpuNode) {
  write("proc/modules", "nvidia_peermem 1 0 - Live 0x0\nnvidia 2 1 nvidia_peermem, Live 0x0\n");
  write("proc/sys/kernel/osrelease", "6.8.0\n");
  write("proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35\n");
  write("proc/meminfo", "HugePages_Total:    64\nHugepagesize:       2048 kB\n");
  write("proc/cmdline", "iommu=pt\n");
  port("mlx5_0", 1, "4: ACTIVE", "5: LinkUp", "InfiniBand");
  bridge("0000:01:00.0", 0);
  in_.memlock = MemlockLimit{true, 0};
  in_.ucx = UcxFacts{"1.17.0", {"rc_mlx5/mlx5_0:1", "tcp/ib0"}, {"host", "cuda"}};
  const auto results = run_doctor(in_);
  ASSERT_EQ(results.size(), 9u);
  for (const CheckResult& r : results) EXPECT_EQ(r.status, CheckStatus::kPass) << r.name << ": " << r.message;
  EXPECT_EQ(worst(results), CheckStatus::kPass);
  const nlohmann::json j = to_json(results);
  EXPECT_EQ(j["worst"], "PASS");
  EXPECT_EQ(j["checks"].size(), 9u);

  // One missing module flips the worst to FAIL and the text says what to do.
  write("proc/modules", "nvidia 2 1 - Live 0x0\n");
  const auto broken = run_doctor(in_);
  EXPECT_EQ(worst(broken), CheckStatus::kFail);
  EXPECT_NE(format_checks(broken).find("[FAIL] gpudirect-rdma"), std::string::npos);
}

TEST(IbBenchDoctor, RealMachineAnswersEveryCheck) {
  // The real tree: whatever the machine has, the doctor answers every check without crashing.
  DoctorInputs real;
  const auto results = run_doctor(real);
  EXPECT_EQ(results.size(), 9u);
  for (const CheckResult& r : results) {
    EXPECT_FALSE(r.message.empty()) << r.name;
    if (r.status != CheckStatus::kPass) {
      EXPECT_FALSE(r.fix.empty()) << r.name;
    }
  }
}

}  // namespace
}  // namespace tern::ibbench
