// PCIe Access Control Services on bridges, from the config space in sysfs. With ACS "P2P Request
// Redirect" on, a switch sends peer-to-peer requests up to the root complex instead of across:
// GPUDirect RDMA then crawls or fails (NCCL's troubleshooting guide).
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "doctor/checks.h"

namespace tern::ibbench {

namespace fs = std::filesystem;

namespace {

constexpr unsigned kAcsCapabilityId = 0x000d;
constexpr unsigned kAcsRequestRedirect = 1u << 2;
constexpr unsigned kAcsCompletionRedirect = 1u << 3;

std::vector<unsigned char> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), {});
}

unsigned u16(const std::vector<unsigned char>& b, std::size_t off) { return b[off] | (unsigned{b[off + 1]} << 8); }
unsigned u32(const std::vector<unsigned char>& b, std::size_t off) { return u16(b, off) | (u16(b, off + 2) << 16); }

// The ACS control register of a bridge's extended config space, or -1 (no ACS, or unreadable: the
// extended space needs root).
long acs_control(const std::vector<unsigned char>& cfg) {
  if (cfg.size() < 0x104) return -1;
  std::size_t off = 0x100;
  for (int guard = 0; guard < 64 && off >= 0x100 && off + 8 <= cfg.size(); ++guard) {
    const unsigned header = u32(cfg, off);
    if (header == 0 || header == 0xffffffffu) return -1;
    if ((header & 0xffff) == kAcsCapabilityId) return static_cast<long>(u16(cfg, off + 6));
    off = (header >> 20) & 0xffc;
  }
  return -1;
}

}  // namespace

CheckResult check_pci_acs(const DoctorInputs& in) {
  const fs::path dir = in.root / "sys/bus/pci/devices";
  std::error_code ec;
  std::vector<std::string> redirecting;
  std::size_t bridges = 0;
  std::vector<fs::path> devices;
  if (fs::is_directory(dir, ec))
    for (const auto& e : fs::directory_iterator(dir, ec)) devices.push_back(e.path());
  std::sort(devices.begin(), devices.end());
  for (const fs::path& dev : devices) {
    std::ifstream cls(dev / "class");
    std::string value;
    cls >> value;
    if (value.rfind("0x0604", 0) != 0) continue;  // PCI-to-PCI bridge
    ++bridges;
    const long ctrl = acs_control(read_bytes(dev / "config"));
    if (ctrl >= 0 && (ctrl & (kAcsRequestRedirect | kAcsCompletionRedirect)) != 0)
      redirecting.push_back(dev.filename().string());
  }
  if (!redirecting.empty()) {
    std::string list;
    for (const std::string& b : redirecting) list += (list.empty() ? "" : ", ") + b;
    return {"pci-acs", CheckStatus::kWarn,
            fmt::format(
                "ACS P2P redirection enabled on {} bridge(s): {}: GPU<->NIC traffic detours through the root complex",
                redirecting.size(), list),
            fmt::format("disable ACS on those bridges in the BIOS, or per boot: setpci -s {} ECAP_ACS+0x6.w=0000 (bare "
                        "metal; keep it in VMs)",
                        redirecting.front())};
  }
  if (bridges == 0)
    return {"pci-acs", CheckStatus::kPass, "no PCI-to-PCI bridges (no PCIe switch to misroute peer-to-peer)", ""};
  return {"pci-acs", CheckStatus::kPass, fmt::format("{} PCI bridge(s), none redirecting peer-to-peer (ACS)", bridges),
          ""};
}

}  // namespace tern::ibbench
