#include "doctor/checks.h"

#include <sys/resource.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/sizes.h"

namespace tern::ibbench {

namespace fs = std::filesystem;

namespace {

// "/proc/modules" under the root; `abs` starts with '/'.
fs::path under(const fs::path& root, std::string_view abs) { return root / fs::path(std::string(abs.substr(1))); }

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

bool module_loaded(const fs::path& root, std::string_view module) {
  const auto text = read_file(under(root, "/proc/modules"));
  if (!text) return false;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);)
    if (line.substr(0, line.find(' ')) == module) return true;
  return false;
}

CheckResult result(std::string name, CheckStatus status, std::string message, std::string fix = {}) {
  return {std::move(name), status, std::move(message), std::move(fix)};
}

// "5.15.0-91-generic" -> {5, 15}
std::pair<int, int> kernel_version(const std::string& release) {
  int major = 0, minor = 0;
  std::sscanf(release.c_str(), "%d.%d", &major, &minor);
  return {major, minor};
}

}  // namespace

std::string_view name(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass:
      return "PASS";
    case CheckStatus::kWarn:
      return "WARN";
    case CheckStatus::kFail:
      return "FAIL";
  }
  return "?";
}

bool nvidia_driver_loaded(const fs::path& root) {
  std::error_code ec;
  return module_loaded(root, "nvidia") || fs::exists(under(root, "/proc/driver/nvidia/version"), ec);
}

CheckResult check_gpudirect_rdma(const DoctorInputs& in) {
  const char* name = "gpudirect-rdma";
  for (const char* m : {"nvidia_peermem", "nv_peer_mem"})
    if (module_loaded(in.root, m))
      return result(name, CheckStatus::kPass, fmt::format("{} is loaded: NICs can DMA to GPU memory", m));
  if (!nvidia_driver_loaded(in.root))
    return result(name, CheckStatus::kWarn, "no NVIDIA driver loaded: GPU data would be staged through host memory",
                  "on GPU nodes install the NVIDIA driver, then `modprobe nvidia-peermem` (or use dma-buf, see below)");
  return result(
      name, CheckStatus::kFail,
      "the NVIDIA driver is loaded but nvidia-peermem is not: no GPUDirect RDMA through peer memory",
      "modprobe nvidia-peermem (and add it to /etc/modules-load.d/), or rely on dma-buf with the open kernel module");
}

CheckResult check_dmabuf(const DoctorInputs& in) {
  const char* name = "dma-buf";
  const auto release = read_file(under(in.root, "/proc/sys/kernel/osrelease"));
  const auto [major, minor] = kernel_version(release ? trim(*release) : "");
  const bool kernel_ok = major > 5 || (major == 5 && minor >= 12);
  const std::string kernel = release ? trim(*release) : "unknown";
  if (!kernel_ok)
    return result(name, CheckStatus::kWarn, fmt::format("kernel {} predates dma-buf RDMA (needs 5.12)", kernel),
                  "use nvidia-peermem, or upgrade to a kernel >= 5.12 for dma-buf GPUDirect RDMA");
  const auto nvidia = read_file(under(in.root, "/proc/driver/nvidia/version"));
  if (!nvidia)
    return result(name, CheckStatus::kWarn,
                  fmt::format("kernel {} supports dma-buf, but no NVIDIA driver is loaded", kernel),
                  "on GPU nodes install the NVIDIA open kernel modules (nvidia-open) to use dma-buf GPUDirect RDMA");
  if (nvidia->find("Open Kernel Module") == std::string::npos)
    return result(name, CheckStatus::kWarn,
                  "the NVIDIA driver is the proprietary kernel module: no dma-buf export of GPU memory",
                  "install the open kernel modules (nvidia-open, driver >= 515), or keep nvidia-peermem");
  return result(name, CheckStatus::kPass,
                fmt::format("kernel {} and the NVIDIA open kernel module: dma-buf GPUDirect RDMA possible", kernel));
}

CheckResult check_memlock(const MemlockLimit& limit) {
  const char* name = "memlock";
  const char* fix =
      "raise it: '* - memlock unlimited' in /etc/security/limits.conf, LimitMEMLOCK=infinity in the systemd unit, "
      "or docker run --ulimit memlock=-1";
  if (limit.unlimited) return result(name, CheckStatus::kPass, "RLIMIT_MEMLOCK is unlimited");
  const std::string shown = format_size(limit.bytes);
  if (limit.bytes < (std::uint64_t{64} << 20))
    return result(name, CheckStatus::kFail,
                  fmt::format("RLIMIT_MEMLOCK is {} bytes ({}): RDMA registrations will fail", limit.bytes, shown),
                  fix);
  return result(name, CheckStatus::kWarn,
                fmt::format("RLIMIT_MEMLOCK is {}: large registrations (GPU buffers, UCX caches) may fail", shown),
                fix);
}

CheckResult check_ucx_transports(const UcxFacts& ucx) {
  const char* name = "ucx-transports";
  std::vector<std::string> rdma;
  for (const std::string& t : ucx.transports) {
    const std::string tl = t.substr(0, t.find('/'));
    if (tl.rfind("rc", 0) == 0 || tl.rfind("ud", 0) == 0 || tl.rfind("dc", 0) == 0) rdma.push_back(t);
  }
  std::string all;
  for (const std::string& t : ucx.transports) all += (all.empty() ? "" : ", ") + t;
  if (!rdma.empty()) return result(name, CheckStatus::kPass, fmt::format("UCX {} offers RDMA: {}", ucx.version, all));
  return result(
      name, CheckStatus::kFail,
      fmt::format("UCX {} offers no RDMA transport (only: {}): traffic goes over TCP", ucx.version,
                  all.empty() ? "none" : all),
      "bring up the RDMA devices (see rdma-ports), install a UCX built with verbs/mlx5 support, and check UCX_TLS");
}

CheckResult check_ucx_memory_types(const UcxFacts& ucx, bool nvidia_gpus) {
  const char* name = "ucx-memory-types";
  std::string types;
  for (const std::string& t : ucx.memory_types) types += (types.empty() ? "" : ", ") + t;
  const bool cuda = std::find(ucx.memory_types.begin(), ucx.memory_types.end(), "cuda") != ucx.memory_types.end();
  if (cuda) return result(name, CheckStatus::kPass, fmt::format("UCX moves {} memory", types));
  if (!nvidia_gpus)
    return result(name, CheckStatus::kPass,
                  fmt::format("UCX moves {} memory (no NVIDIA GPU here, CUDA not needed)", types));
  return result(name, CheckStatus::kFail,
                fmt::format("UCX moves only {} memory but this machine has NVIDIA GPUs", types),
                "install a UCX built --with-cuda (e.g. from the HPC-X / MLNX_OFED packages) so GPU buffers go to the "
                "NIC directly");
}

CheckResult check_hugepages(const DoctorInputs& in) {
  const char* name = "hugepages";
  long long total = -1, size_kb = 0;
  if (const auto meminfo = read_file(under(in.root, "/proc/meminfo"))) {
    std::istringstream lines(*meminfo);
    for (std::string line; std::getline(lines, line);) {
      long long v = 0;
      if (std::sscanf(line.c_str(), "HugePages_Total: %lld", &v) == 1) total = v;
      if (std::sscanf(line.c_str(), "Hugepagesize: %lld kB", &v) == 1) size_kb = v;
    }
  }
  const auto thp = read_file(under(in.root, "/sys/kernel/mm/transparent_hugepage/enabled"));
  std::string thp_mode = "unknown";
  if (thp) {
    const auto open = thp->find('[');
    const auto close = thp->find(']');
    if (open != std::string::npos && close != std::string::npos && close > open)
      thp_mode = thp->substr(open + 1, close - open - 1);
  }
  if (total > 0)
    return result(name, CheckStatus::kPass,
                  fmt::format("{} hugepages of {} kB reserved; transparent hugepages: {}", total, size_kb, thp_mode));
  if (thp_mode == "always" || thp_mode == "madvise")
    return result(name, CheckStatus::kPass, fmt::format("no reserved hugepages; transparent hugepages: {}", thp_mode));
  return result(
      name, CheckStatus::kWarn,
      fmt::format("no hugepages (HugePages_Total {}, transparent hugepages: {}): more TLB misses on large buffers",
                  total < 0 ? 0 : total, thp_mode),
      "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled, or reserve some: sysctl vm.nr_hugepages=1024");
}

CheckResult check_rdma_ports(const DoctorInputs& in) {
  const char* name = "rdma-ports";
  const fs::path dir = under(in.root, "/sys/class/infiniband");
  std::error_code ec;
  std::vector<fs::path> devices;
  if (fs::is_directory(dir, ec))
    for (const auto& e : fs::directory_iterator(dir, ec)) devices.push_back(e.path());
  std::sort(devices.begin(), devices.end());
  if (devices.empty())
    return result(
        name, CheckStatus::kFail,
        fmt::format("no RDMA devices ({} is {})", "/sys/class/infiniband", fs::exists(dir, ec) ? "empty" : "missing"),
        "load the adapter's driver and the verbs module (modprobe mlx5_ib ib_uverbs), then check `ibv_devices`; "
        "a kernel without CONFIG_INFINIBAND cannot do RDMA");
  std::vector<std::string> good, bad;
  bool no_sm = false;
  for (const fs::path& dev : devices) {
    std::vector<fs::path> ports;
    for (const auto& e : fs::directory_iterator(dev / "ports", ec)) ports.push_back(e.path());
    std::sort(ports.begin(), ports.end());
    for (const fs::path& port : ports) {
      const std::string state = trim(read_file(port / "state").value_or("?"));      // "4: ACTIVE"
      const std::string phys = trim(read_file(port / "phys_state").value_or("?"));  // "5: LinkUp"
      const std::string layer = trim(read_file(port / "link_layer").value_or("?"));
      const std::string rate = trim(read_file(port / "rate").value_or("?"));
      const std::string label = fmt::format("{} port {}", dev.filename().string(), port.filename().string());
      if (state.find("ACTIVE") != std::string::npos) {
        good.push_back(fmt::format("{} ACTIVE {} {}", label, layer, rate));
      } else {
        bad.push_back(fmt::format("{} {} ({})", label, state, phys));
        if (state.find("INIT") != std::string::npos && layer == "InfiniBand") no_sm = true;
      }
    }
  }
  if (!bad.empty()) {
    std::string text;
    for (const std::string& b : bad) text += (text.empty() ? "" : "; ") + b;
    return result(
        name, CheckStatus::kFail, "ports not active: " + text,
        no_sm ? "INIT on InfiniBand means no subnet manager: start opensm on one node (or enable the switch's SM)"
              : "check cables and the switch port (ibstat, ibportstate); for RoCE bring the netdev up (ip link set "
                "<dev> up)");
  }
  if (good.empty())
    return result(name, CheckStatus::kFail, "RDMA devices without ports", "check the driver (dmesg | grep mlx5)");
  std::string text;
  for (const std::string& g : good) text += (text.empty() ? "" : "; ") + g;
  return result(name, CheckStatus::kPass, text);
}

CheckResult check_iommu(const DoctorInputs& in) {
  const char* name = "iommu";
  const std::string cmdline = trim(read_file(under(in.root, "/proc/cmdline")).value_or(""));
  std::error_code ec;
  std::size_t units = 0;
  const fs::path dir = under(in.root, "/sys/class/iommu");
  if (fs::is_directory(dir, ec))
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      (void)e;
      ++units;
    }
  const bool passthrough =
      cmdline.find("iommu=pt") != std::string::npos || cmdline.find("iommu.passthrough=1") != std::string::npos;
  if (units == 0)
    return result(name, CheckStatus::kPass, "no IOMMU active (/sys/class/iommu is empty): DMA is not translated");
  if (passthrough)
    return result(name, CheckStatus::kPass, fmt::format("{} IOMMU unit(s) in passthrough mode (iommu=pt)", units));
  return result(
      name, CheckStatus::kWarn,
      fmt::format("{} IOMMU unit(s) active without iommu=pt: GPU<->NIC peer-to-peer DMA is translated or blocked",
                  units),
      "add iommu=pt (and intel_iommu=on / amd_iommu=on as needed) to the kernel command line, or disable the IOMMU in "
      "the BIOS");
}

std::vector<std::string> parse_ucx_resources(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find("resource") == std::string_view::npos) continue;
    const std::size_t dashes = line.find("-- ");
    if (dashes == std::string_view::npos) continue;
    std::string_view tl = line.substr(dashes + 3);
    while (!tl.empty() && (tl.back() == ' ' || tl.back() == '\r')) tl.remove_suffix(1);
    if (!tl.empty() && tl.find('/') != std::string_view::npos) out.emplace_back(tl);
  }
  return out;
}

CheckStatus worst(const std::vector<CheckResult>& results) {
  CheckStatus w = CheckStatus::kPass;
  for (const CheckResult& r : results) w = std::max(w, r.status);
  return w;
}

std::vector<CheckResult> run_doctor(const DoctorInputs& in) {
  std::vector<CheckResult> out;
  const bool gpus = nvidia_driver_loaded(in.root);
  out.push_back(check_rdma_ports(in));
  out.push_back(check_gpudirect_rdma(in));
  out.push_back(check_dmabuf(in));
  MemlockLimit limit;
  if (in.memlock) {
    limit = *in.memlock;
  } else {
    rlimit rl{};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    limit.unlimited = rl.rlim_cur == RLIM_INFINITY;
    limit.bytes = rl.rlim_cur;
  }
  out.push_back(check_memlock(limit));
  std::string ucx_error;
  const std::optional<UcxFacts> ucx = in.ucx ? in.ucx : query_ucx(&ucx_error);
  if (ucx) {
    out.push_back(check_ucx_transports(*ucx));
    out.push_back(check_ucx_memory_types(*ucx, gpus));
  } else {
    out.push_back(result("ucx-transports", CheckStatus::kFail, "UCX cannot start: " + ucx_error,
                         "install UCX (libucx0 / ucx-utils) and check `ucx_info -d`"));
  }
  out.push_back(check_hugepages(in));
  out.push_back(check_iommu(in));
  out.push_back(check_pci_acs(in));
  return out;
}

nlohmann::json to_json(const std::vector<CheckResult>& results) {
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckResult& r : results)
    checks.push_back({{"name", r.name}, {"status", name(r.status)}, {"message", r.message}, {"fix", r.fix}});
  return {{"checks", checks}, {"worst", name(worst(results))}};
}

std::string format_checks(const std::vector<CheckResult>& results) {
  std::string out;
  for (const CheckResult& r : results) {
    out += fmt::format("[{}] {:<17} {}\n", name(r.status), r.name, r.message);
    if (!r.fix.empty()) out += fmt::format("       {:<17} fix: {}\n", "", r.fix);
  }
  const CheckStatus w = worst(results);
  out += fmt::format("\nworst: {}\n", name(w));
  return out;
}

}  // namespace tern::ibbench
