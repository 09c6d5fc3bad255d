#include "tern/daemon/protocol.h"

#include <cstring>
#include <type_traits>

namespace tern::daemon::protocol {
namespace {

// Appends fixed-width fields and strings to a frame.
class Writer {
 public:
  template <typename T>
  void put(T v) {
    static_assert(std::is_integral_v<T>);
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof v);
  }
  void put_string(std::string_view s) {
    put(static_cast<std::uint32_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void put_bytes(std::span<const std::uint8_t> b) { bytes_.insert(bytes_.end(), b.begin(), b.end()); }
  std::vector<std::uint8_t> frame(std::uint16_t type, std::uint16_t fd_count) && {
    std::vector<std::uint8_t> out(kHeaderBytes);
    encode_header({type, static_cast<std::uint32_t>(bytes_.size()), fd_count}, out.data());
    out.insert(out.end(), bytes_.begin(), bytes_.end());
    return out;
  }

 private:
  std::vector<std::uint8_t> bytes_;
};

// Reads fields with bounds checks; the first failure sticks and names the field.
class Reader {
 public:
  Reader(std::span<const std::uint8_t> bytes, std::string_view what) : bytes_(bytes), what_(what) {}
  template <typename T>
  T get(std::string_view field) {
    T v{};
    if (!error_.empty()) return v;
    if (bytes_.size() - pos_ < sizeof v) {
      fail(field, "truncated");
      return v;
    }
    std::memcpy(&v, bytes_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string get_string(std::string_view field, std::size_t max_bytes) {
    const auto n = get<std::uint32_t>(field);
    if (!error_.empty()) return {};
    if (n > max_bytes) {
      fail(field, "is " + std::to_string(n) + " bytes, the limit is " + std::to_string(max_bytes));
      return {};
    }
    if (bytes_.size() - pos_ < n) {
      fail(field, "truncated (" + std::to_string(n) + " bytes announced, " + std::to_string(bytes_.size() - pos_) +
                      " left)");
      return {};
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::vector<std::uint8_t> get_bytes(std::string_view field, std::size_t n) {
    if (!error_.empty()) return {};
    if (bytes_.size() - pos_ < n) {
      fail(field, "truncated");
      return {};
    }
    std::vector<std::uint8_t> b(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_),
                                bytes_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return b;
  }
  void fail(std::string_view field, const std::string& why) {
    if (error_.empty()) error_ = std::string(what_) + ": " + std::string(field) + " " + why;
  }
  // OK when every field decoded and nothing is left over.
  Status finish() {
    if (error_.empty() && pos_ != bytes_.size())
      error_ = std::string(what_) + ": " + std::to_string(bytes_.size() - pos_) + " trailing bytes";
    return error_.empty() ? Status::ok() : corrupt_data(error_);
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::string_view what_;
  std::size_t pos_ = 0;
  std::string error_;
};

std::uint16_t expected_fds(MessageType type, const Request& request) {
  if (type == MessageType::kAllocArena) return 1;
  if (type == MessageType::kHello) return std::get<Hello>(request).ring_capacity == 0 ? 0 : 3;
  return 0;
}

bool known_type(std::uint16_t t) {
  return t >= static_cast<std::uint16_t>(MessageType::kHello) && t <= static_cast<std::uint16_t>(MessageType::kStatus);
}

}  // namespace

std::string_view message_type_name(MessageType type) noexcept {
  switch (type) {
    case MessageType::kHello: return "hello";
    case MessageType::kAllocArena: return "alloc-arena";
    case MessageType::kFreeArena: return "free-arena";
    case MessageType::kGetUniqueId: return "get-unique-id";
    case MessageType::kGroupJoin: return "group-join";
    case MessageType::kGroupLeave: return "group-leave";
    case MessageType::kRegisterCuda: return "register-cuda";
    case MessageType::kDeregisterCuda: return "deregister-cuda";
    case MessageType::kStatus: return "status";
  }
  return "unknown";
}

void encode_header(const FrameHeader& header, std::uint8_t* out) {
  const std::uint32_t magic = kMagic;
  const std::uint16_t version = kVersion, reserved = 0;
  std::memcpy(out, &magic, 4);
  std::memcpy(out + 4, &version, 2);
  std::memcpy(out + 6, &header.type, 2);
  std::memcpy(out + 8, &header.payload_bytes, 4);
  std::memcpy(out + 12, &header.fd_count, 2);
  std::memcpy(out + 14, &reserved, 2);
}

Result<FrameHeader> decode_header(std::span<const std::uint8_t> bytes, std::size_t max_payload) {
  if (bytes.size() < kHeaderBytes)
    return corrupt_data("frame header is " + std::to_string(bytes.size()) + " bytes, needs " +
                        std::to_string(kHeaderBytes));
  std::uint32_t magic, payload;
  std::uint16_t version, type, fds, reserved;
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(&version, bytes.data() + 4, 2);
  std::memcpy(&type, bytes.data() + 6, 2);
  std::memcpy(&payload, bytes.data() + 8, 4);
  std::memcpy(&fds, bytes.data() + 12, 2);
  std::memcpy(&reserved, bytes.data() + 14, 2);
  if (magic != kMagic) return corrupt_data("bad frame magic (not a tern control frame)");
  if (version != kVersion)
    return corrupt_data("control protocol version " + std::to_string(version) + ", this side speaks " +
                        std::to_string(kVersion) + " (libtern and ternd versions differ)");
  if (!known_type(static_cast<std::uint16_t>(type & ~kReplyBit)))
    return corrupt_data("unknown message type " + std::to_string(type));
  if (payload > max_payload)
    return corrupt_data("frame payload of " + std::to_string(payload) + " bytes exceeds the limit of " +
                        std::to_string(max_payload));
  if (fds > kMaxFdsPerFrame) return corrupt_data("frame announces " + std::to_string(fds) + " file descriptors");
  if (reserved != 0) return corrupt_data("frame header's reserved field is not zero");
  return FrameHeader{type, payload, fds};
}

Result<Request> decode_request(const FrameHeader& header, std::span<const std::uint8_t> payload) {
  if (header.type & kReplyBit) return corrupt_data("a reply frame was sent as a request");
  if (!known_type(header.type)) return corrupt_data("unknown message type " + std::to_string(header.type));
  if (payload.size() != header.payload_bytes) return corrupt_data("payload size differs from the header's");
  const auto type = static_cast<MessageType>(header.type);
  Reader r(payload, message_type_name(type));
  Request request;
  switch (type) {
    case MessageType::kHello: {
      Hello h;
      h.abi_version = r.get<std::uint32_t>("abi_version");
      h.ring_capacity = r.get<std::uint32_t>("ring_capacity");
      h.ring_bytes = r.get<std::uint64_t>("ring_bytes");
      h.pid = r.get<std::uint32_t>("pid");
      request = h;
      break;
    }
    case MessageType::kAllocArena: request = AllocArena{r.get<std::uint64_t>("bytes")}; break;
    case MessageType::kFreeArena: request = FreeArena{r.get<std::uint32_t>("arena_id")}; break;
    case MessageType::kGetUniqueId: request = GetUniqueId{}; break;
    case MessageType::kGroupJoin: {
      GroupJoin j;
      j.unique_id = r.get_string("unique_id", kMaxStringBytes);
      j.rank = r.get<std::int32_t>("rank");
      j.nranks = r.get<std::int32_t>("nranks");
      j.local_size = r.get<std::int32_t>("local_size");
      j.timeout_ms = r.get<std::uint32_t>("timeout_ms");
      j.seed = r.get<std::uint64_t>("seed");
      request = std::move(j);
      break;
    }
    case MessageType::kGroupLeave: request = GroupLeave{r.get<std::uint32_t>("group_handle")}; break;
    case MessageType::kRegisterCuda: {
      RegisterCuda c;
      c.ipc_handle = r.get_bytes("ipc_handle", kCudaIpcHandleBytes);
      c.bytes = r.get<std::uint64_t>("bytes");
      c.device = r.get<std::int32_t>("device");
      request = std::move(c);
      break;
    }
    case MessageType::kDeregisterCuda: request = DeregisterCuda{r.get<std::uint32_t>("registration_id")}; break;
    case MessageType::kStatus: request = StatusRequest{}; break;
  }
  TERN_CHECK(r.finish());
  const std::uint16_t fds = expected_fds(type, request);
  if (header.fd_count != fds)
    return corrupt_data(std::string(message_type_name(type)) + " carries " + std::to_string(fds) +
                        " file descriptors, the frame announces " + std::to_string(header.fd_count));
  return request;
}

MessageType request_type(const Request& request) noexcept {
  return static_cast<MessageType>(request.index() + 1);  // the variant's order is the enum's
}

std::vector<std::uint8_t> encode_request(const Request& request, std::uint16_t fd_count) {
  Writer w;
  std::visit(
      [&](const auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, Hello>) {
          w.put(m.abi_version);
          w.put(m.ring_capacity);
          w.put(m.ring_bytes);
          w.put(m.pid);
        } else if constexpr (std::is_same_v<M, AllocArena>) {
          w.put(m.bytes);
        } else if constexpr (std::is_same_v<M, FreeArena>) {
          w.put(m.arena_id);
        } else if constexpr (std::is_same_v<M, GroupJoin>) {
          w.put_string(m.unique_id);
          w.put(m.rank);
          w.put(m.nranks);
          w.put(m.local_size);
          w.put(m.timeout_ms);
          w.put(m.seed);
        } else if constexpr (std::is_same_v<M, GroupLeave>) {
          w.put(m.group_handle);
        } else if constexpr (std::is_same_v<M, RegisterCuda>) {
          w.put_bytes(m.ipc_handle);
          w.put(m.bytes);
          w.put(m.device);
        } else if constexpr (std::is_same_v<M, DeregisterCuda>) {
          w.put(m.registration_id);
        }
      },
      request);
  return std::move(w).frame(static_cast<std::uint16_t>(request_type(request)), fd_count);
}

std::vector<std::uint8_t> encode_reply(MessageType type, const Status& status, const Reply& body) {
  Writer w;
  w.put(static_cast<std::uint32_t>(status.code()));
  std::string_view message = status.message();
  w.put_string(message.substr(0, kMaxStringBytes));
  if (status.is_ok()) {
    switch (type) {
      case MessageType::kHello:
        w.put(body.u64);
        w.put_string(std::string_view(body.text).substr(0, kMaxStringBytes));
        break;
      case MessageType::kAllocArena:
      case MessageType::kGroupJoin:
      case MessageType::kRegisterCuda: w.put(body.u32); break;
      case MessageType::kGetUniqueId: w.put_string(std::string_view(body.text).substr(0, kMaxStringBytes)); break;
      case MessageType::kStatus:
        w.put_string(std::string_view(body.text).substr(0, kMaxPayloadBytes - 64));
        break;
      default: break;
    }
  }
  return std::move(w).frame(static_cast<std::uint16_t>(static_cast<std::uint16_t>(type) | kReplyBit), 0);
}

Result<Reply> decode_reply(MessageType type, const FrameHeader& header, std::span<const std::uint8_t> payload) {
  if (header.type != (static_cast<std::uint16_t>(type) | kReplyBit))
    return corrupt_data("expected the reply to " + std::string(message_type_name(type)) + ", got message type " +
                        std::to_string(header.type));
  if (header.fd_count != 0) return corrupt_data("a reply carries file descriptors");
  Reader r(payload, "reply");
  Reply reply;
  const auto code = r.get<std::uint32_t>("status");
  if (code > static_cast<std::uint32_t>(StatusCode::kInternal)) r.fail("status", std::to_string(code) + " is unknown");
  reply.code = static_cast<StatusCode>(code);
  reply.message = r.get_string("message", kMaxStringBytes);
  if (reply.code == StatusCode::kOk) {
    switch (type) {
      case MessageType::kHello:
        reply.u64 = r.get<std::uint64_t>("client_id");
        reply.text = r.get_string("host", kMaxStringBytes);
        break;
      case MessageType::kAllocArena:
      case MessageType::kGroupJoin:
      case MessageType::kRegisterCuda: reply.u32 = r.get<std::uint32_t>("id"); break;
      case MessageType::kGetUniqueId: reply.text = r.get_string("unique_id", kMaxStringBytes); break;
      case MessageType::kStatus: reply.text = r.get_string("json", kMaxPayloadBytes); break;
      default: break;
    }
  }
  TERN_CHECK(r.finish());
  return reply;
}

}  // namespace tern::daemon::protocol
