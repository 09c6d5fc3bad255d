// Small helpers shared by the root and the members: names, durations, the messages both sides
// compose identically, option validation.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "tern/common/status.h"
#include "tern/transport/bootstrap.h"

namespace tern::transport::bootstrap_detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

/// "1.2.3.4:5678" / "[::1]:5678".
std::string endpoint_string(const tcp::endpoint& endpoint);

/// A duration in seconds for messages: "30 s", "0.3 s", "5.12 s".
std::string format_seconds(Clock::duration d);

/// "rank 2 (host n2)".
std::string peer_label(int rank, std::string_view host);

/// "rank 2", "ranks 1, 2", "ranks 0, 2, 5-7"; `total` > listed.size() appends "and N more".
std::string rank_list(std::span<const std::uint32_t> listed, std::uint32_t total);

/// "group formation timed out after 30 s: 3 of 4 ranks joined (missing: rank 2)".
std::string formation_timeout_message(Clock::duration timeout, std::uint32_t joined, std::uint32_t nranks,
                                      std::span<const std::uint32_t> listed_missing, std::uint32_t missing_total);

/// Checks the options' ranges (kInvalidArgument naming the field).
Status validate(const BootstrapOptions& options);

/// Creates spdlog's default logger, once, before any bootstrap thread can log: its lazy creation
/// inside libspdlog is invisible to ThreadSanitizer (the library is not instrumented), so
/// first uses racing on several threads would be reported. Called by every public entry point.
void init_logging();

/// A heartbeat setting as the wire carries it (milliseconds, at least 1).
std::uint32_t to_wire_ms(std::chrono::milliseconds ms);

}  // namespace tern::transport::bootstrap_detail
