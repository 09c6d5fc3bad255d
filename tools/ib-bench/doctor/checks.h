// `ib-bench check`, the doctor: one function per check, each returning PASS/WARN/FAIL with a
// message and a concrete fix. Every input comes through DoctorInputs: files are read under
// `root` (so tests feed fake /proc and /sys trees), the memlock limit and the UCX facts can be
// given instead of queried.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tern::ibbench {

enum class CheckStatus { kPass = 0, kWarn = 1, kFail = 2 };
std::string_view name(CheckStatus s);  ///< "PASS", "WARN", "FAIL"

struct CheckResult {
  std::string name;  ///< "gpudirect-rdma", "memlock", ...
  CheckStatus status = CheckStatus::kPass;
  std::string message;  ///< what was found
  std::string fix;      ///< what to do (empty on PASS)
};

struct MemlockLimit {
  bool unlimited = false;
  std::uint64_t bytes = 0;  ///< soft limit when not unlimited
};

/// What UCX offers (ucp_context_print_info resources and ucp_context_query memory types).
struct UcxFacts {
  std::string version;                    ///< "1.13.1"
  std::vector<std::string> transports;    ///< "tcp/lo", "rc_mlx5/mlx5_0:1", ...
  std::vector<std::string> memory_types;  ///< "host", "cuda", ...
};

struct DoctorInputs {
  std::filesystem::path root = "/";     ///< prefix for /proc and /sys
  std::optional<MemlockLimit> memlock;  ///< nullopt: getrlimit(RLIMIT_MEMLOCK)
  std::optional<UcxFacts> ucx;          ///< nullopt: query the installed UCX
};

/// nvidia-peermem / nv_peer_mem in <root>/proc/modules (GPUDirect RDMA through peer memory).
CheckResult check_gpudirect_rdma(const DoctorInputs& in);
/// GPUDirect RDMA through dma-buf: kernel >= 5.12 and NVIDIA's open kernel module.
CheckResult check_dmabuf(const DoctorInputs& in);
CheckResult check_memlock(const MemlockLimit& limit);
/// Transports: RDMA ones (rc/ud/dc, mlx5) present, or only TCP / shared memory.
CheckResult check_ucx_transports(const UcxFacts& ucx);
/// CUDA among UCX's memory types, needed when the machine has NVIDIA GPUs.
CheckResult check_ucx_memory_types(const UcxFacts& ucx, bool nvidia_gpus);
/// Explicit hugepages (HugePages_Total) or transparent hugepages.
CheckResult check_hugepages(const DoctorInputs& in);
/// <root>/sys/class/infiniband/*/ports/*/state: every port ACTIVE and LinkUp.
CheckResult check_rdma_ports(const DoctorInputs& in);
/// IOMMU in translation mode slows peer-to-peer DMA: /sys/class/iommu and the kernel command line.
CheckResult check_iommu(const DoctorInputs& in);
/// PCIe ACS redirection on bridges (<root>/sys/bus/pci/devices/*/config) sends GPU<->NIC traffic
/// through the root complex.
CheckResult check_pci_acs(const DoctorInputs& in);

/// Whether the NVIDIA driver is loaded (<root>/proc/modules or <root>/proc/driver/nvidia).
bool nvidia_driver_loaded(const std::filesystem::path& root);

/// Every check, in the order printed. Queries UCX / getrlimit for inputs not given.
std::vector<CheckResult> run_doctor(const DoctorInputs& in);
CheckStatus worst(const std::vector<CheckResult>& results);

/// Parses the resource lines of ucp_context_print_info ("# resource 1 : md 1 dev 1 flags -- tcp/lo").
std::vector<std::string> parse_ucx_resources(std::string_view print_info);
/// The installed UCX, or the reason it could not be initialized.
std::optional<UcxFacts> query_ucx(std::string* error);

nlohmann::json to_json(const std::vector<CheckResult>& results);
std::string format_checks(const std::vector<CheckResult>& results);

}  // namespace tern::ibbench
