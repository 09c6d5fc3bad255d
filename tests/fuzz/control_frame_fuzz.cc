// libFuzzer target for ternd's control-protocol decoder (daemon/include/tern/daemon/protocol.h):
// arbitrary bytes are split into frames the way a daemon session does (header, then payload) and
// decoded as requests under the request limit, and as every kind of reply under the reply limit.
// Nothing may crash, read out of bounds (ASan) or hit undefined behaviour (UBSan); a rejection
// must be kCorruptData; an accepted request must re-encode to exactly its bytes (canonical).
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "tern/daemon/protocol.h"

namespace {

namespace protocol = tern::daemon::protocol;

void check_request(const protocol::FrameHeader& header, std::span<const std::uint8_t> frame) {
  const auto payload = frame.subspan(protocol::kHeaderBytes, header.payload_bytes);
  const auto request = protocol::decode_request(header, payload);
  if (!request.is_ok()) {
    if (request.status().code() != tern::StatusCode::kCorruptData) std::abort();
    return;
  }
  const auto again = protocol::encode_request(*request, header.fd_count);
  if (again.size() != protocol::kHeaderBytes + payload.size() ||
      !std::equal(again.begin(), again.end(), frame.begin()))
    std::abort();
}

void check_replies(const protocol::FrameHeader& header, std::span<const std::uint8_t> payload) {
  for (std::uint16_t t = 1; t <= static_cast<std::uint16_t>(protocol::MessageType::kStatus); ++t) {
    const auto reply = protocol::decode_reply(static_cast<protocol::MessageType>(t), header, payload);
    if (!reply.is_ok() && reply.status().code() != tern::StatusCode::kCorruptData) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> rest(data, size);
  while (rest.size() >= protocol::kHeaderBytes) {
    const auto header = protocol::decode_header(rest, protocol::kMaxPayloadBytes);
    if (!header.is_ok()) {
      if (header.status().code() != tern::StatusCode::kCorruptData) std::abort();
      return 0;
    }
    if (rest.size() - protocol::kHeaderBytes < header->payload_bytes) return 0;
    const auto frame = rest.first(protocol::kHeaderBytes + header->payload_bytes);
    if (header->payload_bytes <= protocol::kMaxRequestPayloadBytes) check_request(*header, frame);
    check_replies(*header, frame.subspan(protocol::kHeaderBytes));
    rest = rest.subspan(frame.size());
  }
  return 0;
}
