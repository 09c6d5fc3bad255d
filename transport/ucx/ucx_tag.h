// How an engine Tag and the sender's rank share one 64-bit UCX tag. UCX matches a receive on the
// tag alone (any endpoint may deliver it), so the source must be part of the tag:
//
//   bit 63 ........ 48 47 ................................ 0
//       sender rank       engine Tag (must fit in 48 bits)
//
// Receives match all 64 bits (kFullTagMask): "this tag from this sender".
#pragma once

#include <ucp/api/ucp.h>

#include <cstdint>

#include "tern/transport/transport.h"
#include "tern/transport/ucx.h"

namespace tern::transport::ucx {

inline constexpr unsigned kEngineTagBits = 48;
inline constexpr ucp_tag_t kFullTagMask = ~ucp_tag_t{0};
static_assert(kUcxMaxTag == (Tag{1} << kEngineTagBits) - 1);
static_assert(kUcxMaxRanks == 1 << (64 - kEngineTagBits));

constexpr bool engine_tag_fits(Tag tag) noexcept { return tag <= kUcxMaxTag; }

/// Precondition: engine_tag_fits(tag) and 0 <= sender < kUcxMaxRanks.
constexpr ucp_tag_t make_ucx_tag(int sender, Tag tag) noexcept {
  return (static_cast<ucp_tag_t>(sender) << kEngineTagBits) | tag;
}
constexpr int sender_of(ucp_tag_t ucx_tag) noexcept { return static_cast<int>(ucx_tag >> kEngineTagBits); }
constexpr Tag engine_tag_of(ucp_tag_t ucx_tag) noexcept { return ucx_tag & kUcxMaxTag; }

}  // namespace tern::transport::ucx
