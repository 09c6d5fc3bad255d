// UniqueId: generation, text form, parsing. Error messages describe what is wrong by position and
// length only, never by quoting the input: a malformed id may still hold the secret.
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "crypto.h"
#include "tern/transport/bootstrap.h"
#include "wire.h"

namespace tern::transport {
namespace {

constexpr std::string_view kPrefix = "tern1:";
constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status check_host(std::string_view host) {
  if (host.empty()) return invalid_argument("unique id: the host is empty");
  if (!bootstrap_wire::valid_host(host))
    return invalid_argument("unique id: the host (" + std::to_string(host.size()) +
                            " bytes) must be 1-255 printable ASCII characters without spaces");
  if (host.find_first_of("[]/") != std::string_view::npos)
    return invalid_argument("unique id: the host contains '[', ']' or '/' (write an IPv6 address without brackets "
                            "to generate(); the text form adds them)");
  return Status::ok();
}

}  // namespace

UniqueId::UniqueId(std::string host, std::uint16_t port, const Secret& secret)
    : host_(std::move(host)), port_(port), secret_(secret) {}

UniqueId::~UniqueId() { OPENSSL_cleanse(secret_.data(), secret_.size()); }

Result<UniqueId> UniqueId::generate(std::string host, std::uint16_t port) {
  TERN_CHECK(check_host(host));
  Secret secret{};
  TERN_CHECK(bootstrap_detail::random_bytes(secret));
  UniqueId id(std::move(host), port, secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  return id;
}

Result<UniqueId> UniqueId::parse(std::string_view text) {
  // Copy-paste friendly: surrounding whitespace (a trailing newline) is ignored.
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    if (text.substr(0, 4) == "tern")
      return invalid_argument("unique id: unsupported format version (this build reads 'tern1:HOST:PORT:SECRET')");
    return invalid_argument("not a tern unique id (expected 'tern1:HOST:PORT:SECRET', got " +
                            std::to_string(text.size()) + " characters)");
  }
  text.remove_prefix(kPrefix.size());

  const auto last = text.rfind(':');
  if (last == std::string_view::npos)
    return invalid_argument("unique id: expected 'tern1:HOST:PORT:SECRET' (no ':' after the host)");
  const std::string_view hex = text.substr(last + 1);
  if (hex.size() != 2 * kSecretBytes)
    return invalid_argument("unique id: the secret must be " + std::to_string(2 * kSecretBytes) + " hex digits, got " +
                            std::to_string(hex.size()) + " characters");
  Secret secret{};
  for (std::size_t i = 0; i < kSecretBytes; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(secret.data(), secret.size());
      return invalid_argument("unique id: the secret has a non-hex character at position " +
                              std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    secret[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  text = text.substr(0, last);

  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    OPENSSL_cleanse(secret.data(), secret.size());
    return invalid_argument("unique id: expected 'tern1:HOST:PORT:SECRET' (no port)");
  }
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    OPENSSL_cleanse(secret.data(), secret.size());
    return invalid_argument("unique id: the port must be a number in 0-65535 (" + std::to_string(port_text.size()) +
                            " characters found)");
  }
  std::string_view host = text.substr(0, colon);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      OPENSSL_cleanse(secret.data(), secret.size());
      return invalid_argument("unique id: an IPv6 host must be written [ADDRESS]");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    OPENSSL_cleanse(secret.data(), secret.size());
    return invalid_argument("unique id: a host containing ':' (IPv6) must be bracketed: tern1:[ADDRESS]:PORT:SECRET");
  }
  if (Status s = check_host(host); !s.is_ok()) {
    OPENSSL_cleanse(secret.data(), secret.size());
    return s;
  }
  UniqueId id{std::string(host), static_cast<std::uint16_t>(port), secret};
  OPENSSL_cleanse(secret.data(), secret.size());
  return id;
}

std::string UniqueId::address() const {
  const bool v6 = host_.find(':') != std::string::npos;
  return (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

std::string UniqueId::to_string() const {
  std::string out = std::string(kPrefix) + address() + ":";
  for (std::uint8_t b : secret_) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::string UniqueId::redacted() const { return std::string(kPrefix) + address() + ":<secret>"; }

UniqueId UniqueId::with_port(std::uint16_t port) const { return UniqueId(host_, port, secret_); }

bool operator==(const UniqueId& a, const UniqueId& b) noexcept {
  return a.host_ == b.host_ && a.port_ == b.port_ && CRYPTO_memcmp(a.secret_.data(), b.secret_.data(), a.secret_.size()) == 0;
}

}  // namespace tern::transport
