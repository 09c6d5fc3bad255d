#include "wire.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

namespace tern::transport::bootstrap_wire {
namespace {

// Bounds-checked little-endian reader over one frame's payload. The first failure is kept (the
// field it concerns, the sizes involved); later reads then fail too.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  bool u8(std::uint8_t& v, const char* field) {
    if (!need(1, field)) return false;
    v = bytes_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v, const char* field) {
    std::uint64_t x = 0;
    if (!le(2, x, field)) return false;
    v = static_cast<std::uint16_t>(x);
    return true;
  }
  bool u32(std::uint32_t& v, const char* field) {
    std::uint64_t x = 0;
    if (!le(4, x, field)) return false;
    v = static_cast<std::uint32_t>(x);
    return true;
  }
  bool i32(std::int32_t& v, const char* field) {
    std::uint32_t x = 0;
    if (!u32(x, field)) return false;
    v = static_cast<std::int32_t>(x);  // two's complement (C++20)
    return true;
  }
  bool u64(std::uint64_t& v, const char* field) { return le(8, v, field); }
  template <std::size_t N>
  bool array(std::array<std::uint8_t, N>& out, const char* field) {
    if (!need(N, field)) return false;
    std::memcpy(out.data(), bytes_.data() + pos_, N);
    pos_ += N;
    return true;
  }
  bool bytes(std::size_t n, Bytes& out, const char* field) {
    if (!need(n, field)) return false;
    out.assign(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_),
               bytes_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return true;
  }
  bool text(std::size_t n, std::string& out, const char* field) {
    if (!need(n, field)) return false;
    out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  /// A length-prefixed blob: checks `len` against `max` and against what is left.
  bool sized_bytes(std::uint32_t len, std::size_t max, Bytes& out, const char* field) {
    if (len > max) return fail(std::string(field) + " is " + std::to_string(len) + " bytes, more than the maximum " +
                               std::to_string(max));
    return bytes(len, out, field);
  }
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  bool done() {
    if (!error_.empty()) return false;
    if (pos_ != bytes_.size())
      return fail(std::to_string(bytes_.size() - pos_) + " unexpected bytes after the message");
    return true;
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  const std::string& error() const { return error_; }

 private:
  bool need(std::size_t n, const char* field) {
    if (!error_.empty()) return false;
    if (bytes_.size() - pos_ < n)
      return fail(std::string("truncated at ") + field + ": needs " + std::to_string(n) + " bytes at offset " +
                  std::to_string(pos_) + ", " + std::to_string(bytes_.size() - pos_) + " left");
    return true;
  }
  bool le(std::size_t n, std::uint64_t& v, const char* field) {
    if (!need(n, field)) return false;
    v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{bytes_[pos_ + i]} << (8 * i);
    pos_ += n;
    return true;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  std::string error_;
};

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void i32(std::int32_t v) { le(static_cast<std::uint32_t>(v), 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void raw(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void raw(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
  Bytes& bytes() { return out_; }

 private:
  void le(std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  Bytes out_;
};

bool printable(char c) noexcept { return c >= 0x20 && c <= 0x7e; }

bool valid_message(std::string_view s) noexcept {
  return s.size() <= kMaxMessageBytes && std::all_of(s.begin(), s.end(), printable);
}

bool read_host(Reader& r, std::string& host) {
  std::uint8_t len = 0;
  if (!r.u8(len, "host length") || !r.text(len, host, "host")) return false;
  if (!valid_host(host)) return r.fail("host name is empty or not printable ASCII");
  return true;
}

bool read_message(Reader& r, std::string& message) {
  std::uint16_t len = 0;
  if (!r.u16(len, "message length")) return false;
  if (len > kMaxMessageBytes)
    return r.fail("message is " + std::to_string(len) + " bytes, more than the maximum " +
                  std::to_string(kMaxMessageBytes));
  if (!r.text(len, message, "message")) return false;
  if (!valid_message(message)) return r.fail("message is not printable ASCII");
  return true;
}

bool read_code(Reader& r, StatusCode& code) {
  std::uint8_t c = 0;
  if (!r.u8(c, "status code")) return false;
  if (c == 0 || c > static_cast<std::uint8_t>(StatusCode::kInternal))
    return r.fail("status code " + std::to_string(c) + " is not an error code");
  code = static_cast<StatusCode>(c);
  return true;
}

bool read_kind(Reader& r, CollectiveKind& kind) {
  std::uint8_t k = 0;
  if (!r.u8(k, "collective kind")) return false;
  if (k != 1 && k != 2) return r.fail("collective kind " + std::to_string(k) + " is unknown");
  kind = static_cast<CollectiveKind>(k);
  return true;
}

void write_host(Writer& w, std::string_view host) {
  const std::size_t n = std::min(host.size(), kMaxHostBytes);
  w.u8(static_cast<std::uint8_t>(n));
  w.raw(host.substr(0, n));
}

void write_message(Writer& w, std::string_view message) {
  const std::string m = sanitize_message(message);
  w.u16(static_cast<std::uint16_t>(m.size()));
  w.raw(m);
}

// --- one decoder per message type; each reads the whole payload -----------------------------

bool decode(Reader& r, Hello& m) {
  std::array<std::uint8_t, kMagic.size()> magic{};
  if (!r.array(magic, "magic")) return false;
  if (magic != kMagic) return r.fail("bad magic (not a tern bootstrap client)");
  if (!r.u16(m.version, "version")) return false;
  if (m.version != kProtocolVersion) {
    // Another protocol version: its layout after the version is unknown. Accept it so that the
    // receiver can answer "version mismatch" instead of "garbage".
    Bytes rest;
    return r.bytes(r.remaining(), rest, "rest");
  }
  return r.array(m.nonce, "nonce");
}

bool decode(Reader& r, Challenge& m) {
  return r.u16(m.version, "version") && r.array(m.nonce, "nonce") && r.array(m.proof, "proof") &&
         r.u32(m.heartbeat_interval_ms, "heartbeat interval") && r.u32(m.heartbeat_timeout_ms, "heartbeat timeout");
}

bool decode(Reader& r, Join& m) {
  std::uint8_t flags = 0;
  std::uint32_t len = 0;
  if (!r.i32(m.rank, "rank") || !r.u8(flags, "flags")) return false;
  if (m.rank < -1 || m.rank >= static_cast<std::int32_t>(kMaxRanks))
    return r.fail("requested rank " + std::to_string(m.rank) + " is out of range");
  if ((flags & ~1u) != 0) return r.fail("unknown flags " + std::to_string(flags));
  m.hosts_root = (flags & 1u) != 0;
  return read_host(r, m.host) && r.u32(len, "payload length") &&
         r.sized_bytes(len, kMaxPayloadBytes, m.payload, "payload") && r.array(m.proof, "proof");
}

bool decode(Reader& r, Progress& m) {
  std::uint16_t listed = 0;
  if (!r.u32(m.nranks, "nranks") || !r.u32(m.joined, "joined") || !r.u32(m.missing_total, "missing total") ||
      !r.u16(listed, "listed"))
    return false;
  if (m.nranks == 0 || m.nranks > kMaxRanks) return r.fail("group size " + std::to_string(m.nranks) + " is out of range");
  if (m.joined > m.nranks || m.missing_total > m.nranks || listed > m.missing_total || listed > kMaxListedMissing)
    return r.fail("inconsistent counts (" + std::to_string(m.joined) + " joined, " + std::to_string(m.missing_total) +
                  " missing, " + std::to_string(listed) + " listed, group of " + std::to_string(m.nranks) + ")");
  m.missing.resize(listed);
  for (std::size_t i = 0; i < listed; ++i) {
    if (!r.u32(m.missing[i], "missing rank")) return false;
    if (m.missing[i] >= m.nranks || (i > 0 && m.missing[i] <= m.missing[i - 1]))
      return r.fail("missing ranks are not ascending ranks of the group");
  }
  return true;
}

bool decode(Reader& r, Welcome& m) {
  if (!r.u32(m.rank, "rank") || !r.u32(m.nranks, "nranks") || !r.i32(m.root_rank, "root rank")) return false;
  if (m.nranks == 0 || m.nranks > kMaxRanks || m.rank >= m.nranks || m.root_rank < -1 ||
      m.root_rank >= static_cast<std::int32_t>(m.nranks))
    return r.fail("rank " + std::to_string(m.rank) + " / root rank " + std::to_string(m.root_rank) +
                  " out of range for a group of " + std::to_string(m.nranks));
  return true;
}

bool decode(Reader& r, Table& m) {
  std::uint32_t count = 0;
  if (!r.u32(count, "count")) return false;
  // Each entry takes at least 6 bytes: check before reserving anything.
  if (count == 0 || count > kMaxRanks || std::size_t{count} * 6 > r.remaining())
    return r.fail("table of " + std::to_string(count) + " entries does not fit " + std::to_string(r.remaining()) +
                  " bytes or the rank limit");
  m.entries.resize(count);
  for (auto& e : m.entries) {
    std::uint32_t len = 0;
    if (!read_host(r, e.host) || !r.u32(len, "payload length") ||
        !r.sized_bytes(len, kMaxPayloadBytes, e.payload, "payload"))
      return false;
  }
  return true;
}

bool decode(Reader&, Heartbeat&) { return true; }
bool decode(Reader&, Leave&) { return true; }
bool decode(Reader&, Goodbye&) { return true; }

bool decode(Reader& r, Contribute& m) {
  std::uint32_t len = 0;
  return r.u64(m.seq, "sequence") && read_kind(r, m.kind) && r.u32(len, "data length") &&
         r.sized_bytes(len, kMaxContributionBytes, m.data, "contribution");
}

bool decode(Reader& r, Gathered& m) {
  std::uint32_t count = 0;
  if (!r.u64(m.seq, "sequence") || !read_kind(r, m.kind) || !r.u32(count, "count")) return false;
  if (count == 0 || count > kMaxRanks || std::size_t{count} * 4 > r.remaining())
    return r.fail("result of " + std::to_string(count) + " contributions does not fit " +
                  std::to_string(r.remaining()) + " bytes or the rank limit");
  m.data.resize(count);
  for (auto& d : m.data) {
    std::uint32_t len = 0;
    if (!r.u32(len, "data length") || !r.sized_bytes(len, kMaxContributionBytes, d, "contribution")) return false;
  }
  return true;
}

bool decode(Reader& r, CollectiveFailed& m) {
  return r.u64(m.seq, "sequence") && read_code(r, m.code) && read_message(r, m.message);
}

bool decode(Reader& r, PeerFailed& m) {
  std::uint8_t kind = 0;
  if (!r.u32(m.rank, "rank") || !r.u8(kind, "kind")) return false;
  if (m.rank >= kMaxRanks) return r.fail("rank " + std::to_string(m.rank) + " is out of range");
  if (kind < 1 || kind > 3) return r.fail("failure kind " + std::to_string(kind) + " is unknown");
  m.kind = static_cast<FailureKind>(kind);
  return r.u32(m.silent_ms, "silent ms") && read_message(r, m.message);
}

bool decode(Reader& r, Error& m) { return read_code(r, m.code) && read_message(r, m.message); }

template <typename T>
Result<Message> decode_as(std::span<const std::uint8_t> payload, MsgType type) {
  Reader r(payload);
  T m{};
  if (!decode(r, m) || !r.done())
    return corrupt_data("bootstrap " + std::string(type_name(type)) + " frame: " + r.error());
  return Message(std::move(m));
}

// --- encoders --------------------------------------------------------------------------------

void encode_body(Writer& w, const Hello& m) {
  w.raw(kMagic);
  w.u16(m.version);
  if (m.version == kProtocolVersion) w.raw(m.nonce);
}
void encode_body(Writer& w, const Challenge& m) {
  w.u16(m.version);
  w.raw(m.nonce);
  w.raw(m.proof);
  w.u32(m.heartbeat_interval_ms);
  w.u32(m.heartbeat_timeout_ms);
}
void encode_join_body(Writer& w, const Join& m) {
  w.i32(m.rank);
  w.u8(m.hosts_root ? 1 : 0);
  write_host(w, m.host);
  w.u32(static_cast<std::uint32_t>(m.payload.size()));
  w.raw(m.payload);
}
void encode_body(Writer& w, const Join& m) {
  encode_join_body(w, m);
  w.raw(m.proof);
}
void encode_body(Writer& w, const Progress& m) {
  const std::size_t listed = std::min(m.missing.size(), kMaxListedMissing);
  w.u32(m.nranks);
  w.u32(m.joined);
  w.u32(m.missing_total);
  w.u16(static_cast<std::uint16_t>(listed));
  for (std::size_t i = 0; i < listed; ++i) w.u32(m.missing[i]);
}
void encode_body(Writer& w, const Welcome& m) {
  w.u32(m.rank);
  w.u32(m.nranks);
  w.i32(m.root_rank);
}
void encode_body(Writer& w, const Table& m) {
  w.u32(static_cast<std::uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    write_host(w, e.host);
    w.u32(static_cast<std::uint32_t>(e.payload.size()));
    w.raw(e.payload);
  }
}
void encode_body(Writer&, const Heartbeat&) {}
void encode_body(Writer&, const Leave&) {}
void encode_body(Writer&, const Goodbye&) {}
void encode_body(Writer& w, const Contribute& m) {
  w.u64(m.seq);
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.u32(static_cast<std::uint32_t>(m.data.size()));
  w.raw(m.data);
}
void encode_body(Writer& w, const Gathered& m) {
  w.u64(m.seq);
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.u32(static_cast<std::uint32_t>(m.data.size()));
  for (const auto& d : m.data) {
    w.u32(static_cast<std::uint32_t>(d.size()));
    w.raw(d);
  }
}
void encode_body(Writer& w, const CollectiveFailed& m) {
  w.u64(m.seq);
  w.u8(static_cast<std::uint8_t>(m.code));
  write_message(w, m.message);
}
void encode_body(Writer& w, const PeerFailed& m) {
  w.u32(m.rank);
  w.u8(static_cast<std::uint8_t>(m.kind));
  w.u32(m.silent_ms);
  write_message(w, m.message);
}
void encode_body(Writer& w, const Error& m) {
  w.u8(static_cast<std::uint8_t>(m.code));
  write_message(w, m.message);
}

}  // namespace

std::string_view type_name(MsgType type) noexcept {
  switch (type) {
    case MsgType::kHello: return "hello";
    case MsgType::kChallenge: return "challenge";
    case MsgType::kJoin: return "join";
    case MsgType::kProgress: return "progress";
    case MsgType::kWelcome: return "welcome";
    case MsgType::kTable: return "table";
    case MsgType::kHeartbeat: return "heartbeat";
    case MsgType::kContribute: return "contribute";
    case MsgType::kGathered: return "gathered";
    case MsgType::kCollectiveFailed: return "collective-failed";
    case MsgType::kPeerFailed: return "peer-failed";
    case MsgType::kLeave: return "leave";
    case MsgType::kGoodbye: return "goodbye";
    case MsgType::kError: return "error";
  }
  return "unknown";
}

std::string_view collective_name(CollectiveKind kind) noexcept {
  return kind == CollectiveKind::kBarrier ? "barrier" : "allgather";
}

MsgType type_of(const Message& message) noexcept {
  // The variant's alternatives are in MsgType order, starting at 1.
  return static_cast<MsgType>(message.index() + 1);
}
static_assert(std::variant_size_v<Message> == kMaxMsgType);
static_assert(std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(MsgType::kError) - 1, Message>, Error>);
static_assert(std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(MsgType::kTable) - 1, Message>, Table>);

Result<FrameHeader> decode_header(std::span<const std::uint8_t> header, std::size_t max_payload) {
  if (header.size() < kHeaderBytes)
    return corrupt_data("bootstrap frame header is " + std::to_string(header.size()) + " bytes, needs " +
                        std::to_string(kHeaderBytes));
  const std::uint8_t type = header[0];
  if (type == 0 || type > kMaxMsgType) return corrupt_data("bootstrap frame type " + std::to_string(type) + " is unknown");
  const std::uint32_t length = static_cast<std::uint32_t>(header[1]) | (static_cast<std::uint32_t>(header[2]) << 8) |
                               (static_cast<std::uint32_t>(header[3]) << 16) |
                               (static_cast<std::uint32_t>(header[4]) << 24);
  const std::size_t limit = std::min(max_payload, kMaxFrameBytes);
  if (length > limit)
    return corrupt_data("bootstrap " + std::string(type_name(static_cast<MsgType>(type))) + " frame announces " +
                        std::to_string(length) + " bytes, more than the " + std::to_string(limit) +
                        " allowed here");
  return FrameHeader{static_cast<MsgType>(type), length};
}

Result<Message> decode_frame(std::span<const std::uint8_t> frame, std::size_t max_payload) {
  TERN_ASSIGN_OR_RETURN(const FrameHeader h, decode_header(frame, max_payload));
  if (frame.size() - kHeaderBytes != h.length)
    return corrupt_data("bootstrap " + std::string(type_name(h.type)) + " frame announces " +
                        std::to_string(h.length) + " payload bytes, has " + std::to_string(frame.size() - kHeaderBytes));
  const auto payload = frame.subspan(kHeaderBytes);
  switch (h.type) {
    case MsgType::kHello: return decode_as<Hello>(payload, h.type);
    case MsgType::kChallenge: return decode_as<Challenge>(payload, h.type);
    case MsgType::kJoin: return decode_as<Join>(payload, h.type);
    case MsgType::kProgress: return decode_as<Progress>(payload, h.type);
    case MsgType::kWelcome: return decode_as<Welcome>(payload, h.type);
    case MsgType::kTable: return decode_as<Table>(payload, h.type);
    case MsgType::kHeartbeat: return decode_as<Heartbeat>(payload, h.type);
    case MsgType::kContribute: return decode_as<Contribute>(payload, h.type);
    case MsgType::kGathered: return decode_as<Gathered>(payload, h.type);
    case MsgType::kCollectiveFailed: return decode_as<CollectiveFailed>(payload, h.type);
    case MsgType::kPeerFailed: return decode_as<PeerFailed>(payload, h.type);
    case MsgType::kLeave: return decode_as<Leave>(payload, h.type);
    case MsgType::kGoodbye: return decode_as<Goodbye>(payload, h.type);
    case MsgType::kError: return decode_as<Error>(payload, h.type);
  }
  return internal_error("bootstrap frame type not handled");
}

Bytes encode(const Message& message) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(type_of(message)));
  w.u32(0);  // length, patched below
  std::visit([&w](const auto& m) { encode_body(w, m); }, message);
  Bytes& out = w.bytes();
  const auto length = static_cast<std::uint32_t>(out.size() - kHeaderBytes);
  for (std::size_t i = 0; i < 4; ++i) out[1 + i] = static_cast<std::uint8_t>(length >> (8 * i));
  return std::move(out);
}

Bytes join_body(const Join& join) {
  Writer w;
  encode_join_body(w, join);
  return std::move(w.bytes());
}

bool valid_host(std::string_view host) noexcept {
  return !host.empty() && host.size() <= kMaxHostBytes &&
         std::all_of(host.begin(), host.end(), [](char c) { return c > 0x20 && c <= 0x7e; });
}

std::string sanitize_message(std::string_view text) {
  std::string out(text.substr(0, kMaxMessageBytes));
  for (char& c : out)
    if (!printable(c)) c = '?';
  return out;
}

}  // namespace tern::transport::bootstrap_wire
