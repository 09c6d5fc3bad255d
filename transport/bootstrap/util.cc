#include "util.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

namespace tern::transport::bootstrap_detail {

std::string endpoint_string(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

std::string format_seconds(Clock::duration d) {
  const double s = std::chrono::duration<double>(d).count();
  char text[32];
  std::snprintf(text, sizeof text, "%.3g s", s);
  return text;
}

std::string peer_label(int rank, std::string_view host) {
  return "rank " + std::to_string(rank) + " (host " + std::string(host) + ")";
}

std::string rank_list(std::span<const std::uint32_t> listed, std::uint32_t total) {
  std::string out = (total == 1 ? "rank " : "ranks ");
  for (std::size_t i = 0; i < listed.size();) {
    std::size_t j = i;
    while (j + 1 < listed.size() && listed[j + 1] == listed[j] + 1) ++j;
    if (j < i + 2) j = i;  // runs of three or more become "a-b"; "1, 2" stays a list
    if (i > 0) out += ", ";
    out += std::to_string(listed[i]);
    if (j > i) out += "-" + std::to_string(listed[j]);
    i = j + 1;
  }
  if (total > listed.size()) out += " and " + std::to_string(total - listed.size()) + " more";
  return out;
}

std::string formation_timeout_message(Clock::duration timeout, std::uint32_t joined, std::uint32_t nranks,
                                      std::span<const std::uint32_t> listed_missing, std::uint32_t missing_total) {
  std::string out = "group formation timed out after " + format_seconds(timeout) + ": " + std::to_string(joined) +
                    " of " + std::to_string(nranks) + " ranks joined";
  if (missing_total > 0) out += " (missing: " + rank_list(listed_missing, missing_total) + ")";
  return out;
}

Status validate(const BootstrapOptions& o) {
  using std::chrono::milliseconds;
  const auto positive = [](milliseconds v, const char* name) -> Status {
    if (v <= milliseconds::zero())
      return invalid_argument(std::string("bootstrap options: ") + name + " must be positive, is " +
                              std::to_string(v.count()) + " ms");
    return Status::ok();
  };
  TERN_CHECK(positive(o.formation_timeout, "formation_timeout"));
  TERN_CHECK(positive(o.handshake_timeout, "handshake_timeout"));
  TERN_CHECK(positive(o.connect_timeout, "connect_timeout"));
  TERN_CHECK(positive(o.connect_retry_interval, "connect_retry_interval"));
  TERN_CHECK(positive(o.heartbeat_interval, "heartbeat_interval"));
  TERN_CHECK(positive(o.collective_timeout, "collective_timeout"));
  constexpr milliseconds kMaxHeartbeat{24LL * 3600 * 1000};
  if (o.heartbeat_timeout < 2 * o.heartbeat_interval || o.heartbeat_timeout > kMaxHeartbeat)
    return invalid_argument("bootstrap options: heartbeat_timeout (" + std::to_string(o.heartbeat_timeout.count()) +
                            " ms) must be at least twice heartbeat_interval (" +
                            std::to_string(o.heartbeat_interval.count()) + " ms) and at most a day");
  if (o.max_pending_handshakes == 0) return invalid_argument("bootstrap options: max_pending_handshakes must be >= 1");
  return Status::ok();
}

void init_logging() {
  static std::once_flag once;
  std::call_once(once, [] { (void)spdlog::default_logger_raw(); });
}

std::uint32_t to_wire_ms(std::chrono::milliseconds ms) {
  return static_cast<std::uint32_t>(std::max<std::int64_t>(1, ms.count()));
}

}  // namespace tern::transport::bootstrap_detail
