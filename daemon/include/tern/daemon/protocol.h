// ternd's control protocol: the frames libtern and ternd exchange over the Unix control socket.
// The data path (allreduce submissions and completions) does not use the socket at all: it goes
// through the shared-memory rings of ring.h, handed over once in Hello.
//
// Frame = 16-byte header + payload, native byte order (both ends are on one host):
//
//   u32 magic 'TRND' | u16 version | u16 type | u32 payload_bytes | u16 fd_count | u16 reserved(0)
//
// File descriptors (memfds, eventfds) travel as SCM_RIGHTS ancillary data with the frame's bytes;
// `fd_count` says how many belong to the frame, and the receiver takes exactly that many from the
// descriptors it has received, in order. A request gets exactly one reply, in order; a reply's
// payload starts with u32 status code + string message (empty on success), then the body.
//
// Payload fields are fixed-width integers and strings (u32 length + bytes). Every decoder here
// checks every length, count and enum against the frame and the limits below before using it, and
// rejects trailing bytes: input from a client is hostile until decoded (fuzzed by
// tests/fuzz/control_frame_fuzz.cc). Errors are kCorruptData with what was wrong.
//
// Thread safety: pure functions on values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "tern/common/status.h"

namespace tern::daemon::protocol {

inline constexpr std::uint32_t kMagic = 0x444E5254;  // "TRND" in memory order on little endian
inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 16;
inline constexpr std::size_t kMaxPayloadBytes = std::size_t{1} << 20;  ///< status JSON can be long
inline constexpr std::size_t kMaxRequestPayloadBytes = 4096;            ///< what a client may send
inline constexpr std::size_t kMaxFdsPerFrame = 3;
inline constexpr std::size_t kMaxStringBytes = 1024;     ///< unique ids, host names, messages
inline constexpr std::size_t kCudaIpcHandleBytes = 64;   ///< sizeof(cudaIpcMemHandle_t)
inline constexpr std::uint16_t kReplyBit = 0x8000;

enum class MessageType : std::uint16_t {
  kHello = 1,        ///< fds: ring memfd, submission eventfd, completion eventfd (or none: control only)
  kAllocArena = 2,   ///< fds: the arena memfd (sealed against shrinking)
  kFreeArena = 3,
  kGetUniqueId = 4,
  kGroupJoin = 5,    ///< replied to once the whole group formed (or failed)
  kGroupLeave = 6,
  kRegisterCuda = 7,
  kDeregisterCuda = 8,
  kStatus = 9,
};
std::string_view message_type_name(MessageType type) noexcept;

struct FrameHeader {
  std::uint16_t type = 0;  ///< MessageType, with kReplyBit on replies
  std::uint32_t payload_bytes = 0;
  std::uint16_t fd_count = 0;
};

struct Hello {
  std::uint32_t abi_version = 0;
  std::uint32_t ring_capacity = 0;  ///< 0: a control-only client (ternctl), no fds
  std::uint64_t ring_bytes = 0;
  std::uint32_t pid = 0;            ///< informational; SO_PEERCRED is what the daemon trusts
};
struct AllocArena { std::uint64_t bytes = 0; };
struct FreeArena { std::uint32_t arena_id = 0; };
struct GetUniqueId {};
struct GroupJoin {
  std::string unique_id;  ///< text form; a credential: never logged
  std::int32_t rank = 0, nranks = 0, local_size = 0;
  std::uint32_t timeout_ms = 0;
  std::uint64_t seed = 0;
};
struct GroupLeave { std::uint32_t group_handle = 0; };
struct RegisterCuda {
  std::vector<std::uint8_t> ipc_handle;  ///< exactly kCudaIpcHandleBytes
  std::uint64_t bytes = 0;
  std::int32_t device = 0;
};
struct DeregisterCuda { std::uint32_t registration_id = 0; };
struct StatusRequest {};

using Request = std::variant<Hello, AllocArena, FreeArena, GetUniqueId, GroupJoin, GroupLeave, RegisterCuda,
                             DeregisterCuda, StatusRequest>;

/// A decoded reply: status + message, and the body fields the request type has.
struct Reply {
  StatusCode code = StatusCode::kOk;
  std::string message;
  std::uint64_t u64 = 0;   ///< Hello: client id
  std::uint32_t u32 = 0;   ///< AllocArena: arena id; GroupJoin: group handle; RegisterCuda: registration id
  std::string text;        ///< Hello: daemon host name; GetUniqueId: the id; Status: JSON
};

/// Checks magic, version, type, payload size (against `max_payload`) and fd count.
Result<FrameHeader> decode_header(std::span<const std::uint8_t> bytes, std::size_t max_payload);
void encode_header(const FrameHeader& header, std::uint8_t* out);

/// Decodes a request payload of `header.type`; the fd count must be what that type carries.
Result<Request> decode_request(const FrameHeader& header, std::span<const std::uint8_t> payload);
/// Frame bytes (header included) of a request that is sent with `fd_count` descriptors attached.
std::vector<std::uint8_t> encode_request(const Request& request, std::uint16_t fd_count);
MessageType request_type(const Request& request) noexcept;

/// Frame bytes of the reply to a request of `type`.
std::vector<std::uint8_t> encode_reply(MessageType type, const Status& status, const Reply& body = {});
/// Decodes a reply payload for a request of `type`.
Result<Reply> decode_reply(MessageType type, const FrameHeader& header, std::span<const std::uint8_t> payload);

}  // namespace tern::daemon::protocol
