#include "env_defaults.h"

#include <array>
#include <cctype>
#include <cstdlib>

namespace tern::transport {

namespace {
constexpr std::array<UcxEnvDefault, 2> kDefaults{{
    {"MM_ERROR_HANDLING", "y",
     "with error handling mode PEER, UCX 1.13 drops shared memory (posix/sysv) unless this is set, "
     "and same-host traffic silently falls back to TCP loopback"},
    {"KEEPALIVE_INTERVAL", "1s",
     "the keepalive is the only way UCX notices a dead peer on shared memory; UCX's 20 s default is "
     "too slow, 1 s costs one tiny check per endpoint per second"},
}};
}  // namespace

std::span<const UcxEnvDefault> ucx_env_defaults() { return kDefaults; }

namespace ucx {

std::optional<std::string> process_env(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

bool same_setting_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool tls_may_use_shared_memory(std::string_view tls) {
  if (tls.empty()) return true;
  const bool exclusion = tls.front() == '^';
  if (exclusion) tls.remove_prefix(1);
  bool alias = false;  // "sm", "shm", "mm": UCX's aliases for every shared-memory transport
  bool posix = false;
  bool sysv = false;
  bool other_shm = false;
  bool all = false;
  while (!tls.empty()) {
    const std::size_t comma = tls.find(',');
    const std::string_view item = tls.substr(0, comma);
    tls = comma == std::string_view::npos ? std::string_view{} : tls.substr(comma + 1);
    alias = alias || same_setting_name(item, "sm") || same_setting_name(item, "shm") || same_setting_name(item, "mm");
    posix = posix || same_setting_name(item, "posix");
    sysv = sysv || same_setting_name(item, "sysv");
    other_shm = other_shm || same_setting_name(item, "xpmem");
    all = all || same_setting_name(item, "all");
  }
  // "^sm" excludes every shared-memory transport; "^posix" still leaves sysv.
  if (exclusion) return !(alias || all || (posix && sysv));
  return alias || all || posix || sysv || other_shm;
}

std::vector<UcxSetting> defaults_to_apply(const UcxOptions& options, const EnvLookup& env) {
  auto configured = [&](std::string_view name) -> std::optional<std::string> {
    for (const UcxSetting& s : options.config) {
      if (same_setting_name(s.name, name)) return s.value;
    }
    return env("UCX_" + std::string(name));
  };
  std::vector<UcxSetting> out;
  for (const UcxEnvDefault& d : kDefaults) {
    if (configured(d.name)) continue;
    if (d.name == "MM_ERROR_HANDLING" && !tls_may_use_shared_memory(configured("TLS").value_or(""))) continue;
    out.push_back({std::string(d.name), std::string(d.value)});
  }
  return out;
}

}  // namespace ucx
}  // namespace tern::transport
