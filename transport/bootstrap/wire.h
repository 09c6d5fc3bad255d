// The bootstrap wire protocol (docs/bootstrap.md): frames of `u8 type | u32 length (LE) |
// payload`, one message each. decode_header()/decode_frame() are pure functions of their bytes
// (no I/O, no state) so that they can be fuzzed; they check every length against a hard maximum
// before using it and reject anything that is not exactly one well-formed message (kCorruptData).
// encode() is their inverse: decode_frame(encode(m)) == m, and encode(decode_frame(b)) == b for
// every accepted frame of the current protocol version.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tern/common/status.h"

namespace tern::transport::bootstrap_wire {

inline constexpr std::uint16_t kProtocolVersion = 1;
inline constexpr std::array<std::uint8_t, 8> kMagic = {'T', 'E', 'R', 'N', 'B', 'O', 'O', 'T'};

inline constexpr std::size_t kHeaderBytes = 5;
/// Absolute maximum payload of one frame (root -> member: the table, allgather results).
inline constexpr std::size_t kMaxFrameBytes = std::size_t{256} << 20;
/// Maxima by context. A connection's reader uses the limit of its state: an unauthenticated
/// peer can never make the root allocate more than kMaxJoinFrame.
inline constexpr std::size_t kMaxHandshakeFrame = 2048;                    ///< hello, challenge, error
inline constexpr std::size_t kMaxJoinFrame = (std::size_t{64} << 10) + 512;  ///< join with a payload
inline constexpr std::size_t kMaxMemberFrame = (std::size_t{1} << 20) + 512; ///< member -> root after auth

inline constexpr std::size_t kMaxHostBytes = 255;
inline constexpr std::size_t kMaxMessageBytes = 1024;
inline constexpr std::size_t kMaxPayloadBytes = std::size_t{64} << 10;
inline constexpr std::size_t kMaxContributionBytes = std::size_t{1} << 20;
inline constexpr std::uint32_t kMaxRanks = 65536;
inline constexpr std::size_t kMaxListedMissing = 64;
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kMacBytes = 32;

using Nonce = std::array<std::uint8_t, kNonceBytes>;
using Mac = std::array<std::uint8_t, kMacBytes>;
using Bytes = std::vector<std::uint8_t>;

enum class MsgType : std::uint8_t {
  kHello = 1,             ///< member -> root: magic, version, member nonce
  kChallenge = 2,         ///< root -> member: root nonce, root proof, heartbeat settings
  kJoin = 3,              ///< member -> root: requested rank, host, payload, member proof
  kProgress = 4,          ///< root -> waiting members: how many joined, which ranks are missing
  kWelcome = 5,           ///< root -> member: its rank, group size, the rank hosting the root
  kTable = 6,             ///< root -> member: rank -> (host, payload), follows kWelcome
  kHeartbeat = 7,         ///< both directions, empty
  kContribute = 8,        ///< member -> root: one collective contribution
  kGathered = 9,          ///< root -> members: all contributions of one collective
  kCollectiveFailed = 10, ///< root -> members: a collective could not complete
  kPeerFailed = 11,       ///< root -> members: a member left, died or is silent
  kLeave = 12,            ///< member -> root: clean leave, empty
  kGoodbye = 13,          ///< root -> members: the root shuts down, empty
  kError = 14,            ///< either direction: fatal error; the sender closes the connection
};
inline constexpr std::uint8_t kMaxMsgType = 14;

std::string_view type_name(MsgType type) noexcept;

enum class CollectiveKind : std::uint8_t { kAllgather = 1, kBarrier = 2 };
enum class FailureKind : std::uint8_t { kLeft = 1, kConnectionLost = 2, kSilent = 3 };

std::string_view collective_name(CollectiveKind kind) noexcept;

struct Hello {
  std::uint16_t version = kProtocolVersion;
  Nonce nonce{};  ///< zero when version != kProtocolVersion (the rest is not parsed)
  friend bool operator==(const Hello&, const Hello&) = default;
};
struct Challenge {
  std::uint16_t version = kProtocolVersion;
  Nonce nonce{};
  Mac proof{};
  std::uint32_t heartbeat_interval_ms = 0;
  std::uint32_t heartbeat_timeout_ms = 0;
  friend bool operator==(const Challenge&, const Challenge&) = default;
};
struct Join {
  std::int32_t rank = -1;
  bool hosts_root = false;
  std::string host;
  Bytes payload;
  Mac proof{};
  friend bool operator==(const Join&, const Join&) = default;
};
struct Progress {
  std::uint32_t nranks = 0;
  std::uint32_t joined = 0;
  std::uint32_t missing_total = 0;
  std::vector<std::uint32_t> missing;  ///< ascending, at most kMaxListedMissing of them
  friend bool operator==(const Progress&, const Progress&) = default;
};
struct Welcome {
  std::uint32_t rank = 0;
  std::uint32_t nranks = 0;
  std::int32_t root_rank = -1;
  friend bool operator==(const Welcome&, const Welcome&) = default;
};
struct TableEntry {
  std::string host;
  Bytes payload;
  friend bool operator==(const TableEntry&, const TableEntry&) = default;
};
struct Table {
  std::vector<TableEntry> entries;
  friend bool operator==(const Table&, const Table&) = default;
};
struct Heartbeat {
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};
struct Contribute {
  std::uint64_t seq = 0;
  CollectiveKind kind = CollectiveKind::kAllgather;
  Bytes data;
  friend bool operator==(const Contribute&, const Contribute&) = default;
};
struct Gathered {
  std::uint64_t seq = 0;
  CollectiveKind kind = CollectiveKind::kAllgather;
  std::vector<Bytes> data;
  friend bool operator==(const Gathered&, const Gathered&) = default;
};
struct CollectiveFailed {
  std::uint64_t seq = 0;
  StatusCode code = StatusCode::kInternal;
  std::string message;
  friend bool operator==(const CollectiveFailed&, const CollectiveFailed&) = default;
};
struct PeerFailed {
  std::uint32_t rank = 0;
  FailureKind kind = FailureKind::kLeft;
  std::uint32_t silent_ms = 0;
  std::string message;
  friend bool operator==(const PeerFailed&, const PeerFailed&) = default;
};
struct Leave {
  friend bool operator==(const Leave&, const Leave&) = default;
};
struct Goodbye {
  friend bool operator==(const Goodbye&, const Goodbye&) = default;
};
struct Error {
  StatusCode code = StatusCode::kInternal;
  std::string message;
  friend bool operator==(const Error&, const Error&) = default;
};

using Message = std::variant<Hello, Challenge, Join, Progress, Welcome, Table, Heartbeat, Contribute,
                             Gathered, CollectiveFailed, PeerFailed, Leave, Goodbye, Error>;

MsgType type_of(const Message& message) noexcept;

struct FrameHeader {
  MsgType type = MsgType::kHeartbeat;
  std::uint32_t length = 0;  ///< payload bytes after the header
};

/// Validates the first kHeaderBytes of a frame: a known type and a length of at most
/// `max_payload` (which is itself capped at kMaxFrameBytes). Call before allocating the payload.
Result<FrameHeader> decode_header(std::span<const std::uint8_t> header, std::size_t max_payload);

/// Decodes exactly one frame (header + payload, nothing after it).
Result<Message> decode_frame(std::span<const std::uint8_t> frame,
                             std::size_t max_payload = kMaxFrameBytes);

/// Encodes one frame. Strings are made valid (over-long messages truncated, bytes outside
/// printable ASCII replaced by '?'); callers validate hosts, payloads and counts beforehand.
Bytes encode(const Message& message);

/// The bytes of a Join that its proof covers: everything but the proof itself.
Bytes join_body(const Join& join);

/// A host name as the protocol accepts it: 1..255 bytes of printable ASCII without spaces.
bool valid_host(std::string_view host) noexcept;
/// Makes `text` a valid protocol message: printable ASCII, at most kMaxMessageBytes.
std::string sanitize_message(std::string_view text);

}  // namespace tern::transport::bootstrap_wire
