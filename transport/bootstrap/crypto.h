// The bootstrap's cryptography (OpenSSL): random bytes, HMAC-SHA256 proofs, constant-time
// comparison. The proofs are domain-separated so that one can never stand in for another.
#pragma once

#include <cstdint>
#include <span>

#include "tern/common/status.h"
#include "tern/transport/bootstrap.h"
#include "wire.h"

namespace tern::transport::bootstrap_detail {

/// Fills `out` from OpenSSL's CSPRNG; kUnavailable if it cannot.
Status random_bytes(std::span<std::uint8_t> out);

/// The root's answer to a member's challenge: HMAC(secret, "tern-bootstrap-v1 root" 0x00 ||
/// member_nonce || root_nonce).
bootstrap_wire::Mac root_proof(const UniqueId::Secret& secret, const bootstrap_wire::Nonce& member_nonce,
                               const bootstrap_wire::Nonce& root_nonce);

/// The member's answer to the root's challenge, binding what it announces: HMAC(secret,
/// "tern-bootstrap-v1 member" 0x00 || root_nonce || member_nonce || join_body).
bootstrap_wire::Mac member_proof(const UniqueId::Secret& secret, const bootstrap_wire::Nonce& root_nonce,
                                 const bootstrap_wire::Nonce& member_nonce, std::span<const std::uint8_t> join_body);

/// Constant-time equality of two MACs.
bool mac_equal(const bootstrap_wire::Mac& a, const bootstrap_wire::Mac& b) noexcept;

}  // namespace tern::transport::bootstrap_detail
