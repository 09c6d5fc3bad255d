#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <string>
#include <string_view>
#include <vector>

namespace tern::transport::bootstrap_detail {
namespace {

constexpr std::string_view kRootLabel = "tern-bootstrap-v1 root";
constexpr std::string_view kMemberLabel = "tern-bootstrap-v1 member";

bootstrap_wire::Mac hmac(const UniqueId::Secret& secret, std::string_view label,
                         std::initializer_list<std::span<const std::uint8_t>> parts) {
  std::vector<std::uint8_t> input(label.begin(), label.end());
  input.push_back(0);
  for (const auto& p : parts) input.insert(input.end(), p.begin(), p.end());
  bootstrap_wire::Mac out{};
  unsigned int len = 0;
  // HMAC-SHA256 over inputs of at most ~64 KiB cannot fail short of memory exhaustion; a failure
  // leaves `out` zeroed, which no honest peer's proof equals (the comparison then fails).
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), input.data(), input.size(), out.data(),
           &len) == nullptr ||
      len != out.size())
    out.fill(0);
  return out;
}

}  // namespace

Status random_bytes(std::span<std::uint8_t> out) {
  if (out.size() > static_cast<std::size_t>(INT_MAX)) return invalid_argument("random_bytes: request too large");
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    const unsigned long err = ERR_get_error();
    char text[256] = {};
    ERR_error_string_n(err, text, sizeof text);
    return unavailable(std::string("no secure randomness (OpenSSL RAND_bytes failed: ") + text + ")");
  }
  return Status::ok();
}

bootstrap_wire::Mac root_proof(const UniqueId::Secret& secret, const bootstrap_wire::Nonce& member_nonce,
                               const bootstrap_wire::Nonce& root_nonce) {
  return hmac(secret, kRootLabel, {member_nonce, root_nonce});
}

bootstrap_wire::Mac member_proof(const UniqueId::Secret& secret, const bootstrap_wire::Nonce& root_nonce,
                                 const bootstrap_wire::Nonce& member_nonce, std::span<const std::uint8_t> join_body) {
  return hmac(secret, kMemberLabel, {root_nonce, member_nonce, join_body});
}

bool mac_equal(const bootstrap_wire::Mac& a, const bootstrap_wire::Mac& b) noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace tern::transport::bootstrap_detail
