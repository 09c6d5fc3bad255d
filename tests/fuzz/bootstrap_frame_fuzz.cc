// libFuzzer target for the bootstrap frame decoder (transport/bootstrap/wire.h): arbitrary bytes
// go through decode_header() and decode_frame() under every context's size limit, and through
// the same header-then-payload splitting a connection does. Nothing may crash, read out of bounds
// (ASan), hit undefined behaviour (UBSan) or allocate beyond the limits; a rejection must be
// kCorruptData; an accepted frame must re-encode to exactly its bytes (the encoding is canonical)
// and decode again to the same message.
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

#include "wire.h"

namespace {

namespace wire = tern::transport::bootstrap_wire;

void check_one(std::span<const std::uint8_t> frame, std::size_t limit) {
  if (frame.size() >= wire::kHeaderBytes) {
    const auto header = wire::decode_header(frame, limit);
    if (header.is_ok() && header->length > limit) std::abort();
  }
  const auto message = wire::decode_frame(frame, limit);
  if (!message.is_ok()) {
    if (message.status().code() != tern::StatusCode::kCorruptData) std::abort();
    return;
  }
  if (frame.size() - wire::kHeaderBytes > limit) std::abort();
  const auto* hello = std::get_if<wire::Hello>(&*message);
  const bool foreign_hello = hello != nullptr && hello->version != wire::kProtocolVersion;
  const wire::Bytes again = wire::encode(*message);
  if (!foreign_hello && !std::equal(again.begin(), again.end(), frame.begin(), frame.end())) std::abort();
  const auto round_trip = wire::decode_frame(again);
  if (!round_trip.is_ok() || !(*round_trip == *message)) std::abort();
  if (const auto* join = std::get_if<wire::Join>(&*message)) {
    // The proof covers exactly the join's bytes before the proof.
    const wire::Bytes body = wire::join_body(*join);
    if (body.size() + wire::kMacBytes + wire::kHeaderBytes != frame.size()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exactly-sized copy, so that reading one byte past the input is an ASan error.
  const std::vector<std::uint8_t> bytes(data, data + size);
  for (std::size_t limit : {wire::kMaxHandshakeFrame, wire::kMaxJoinFrame, wire::kMaxMemberFrame, wire::kMaxFrameBytes})
    check_one(bytes, limit);

  // As a connection reads a stream: header, limit check, payload, decode; repeat.
  std::span<const std::uint8_t> rest(bytes);
  while (rest.size() >= wire::kHeaderBytes) {
    const auto header = wire::decode_header(rest, wire::kMaxMemberFrame);
    if (!header.is_ok() || rest.size() - wire::kHeaderBytes < header->length) break;
    const std::vector<std::uint8_t> frame(rest.begin(), rest.begin() + wire::kHeaderBytes + header->length);
    check_one(frame, wire::kMaxMemberFrame);
    rest = rest.subspan(frame.size());
  }
  return 0;
}
