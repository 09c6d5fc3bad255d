// The control protocol's codec and the shared-memory ring, on their own.
#include <gtest/gtest.h>

#include <cstring>

#include "tern/daemon/protocol.h"
#include "tern/daemon/ring.h"

namespace tern::daemon {
namespace {

using protocol::MessageType;

Result<protocol::Request> roundtrip(const protocol::Request& r, std::uint16_t fds) {
  const auto frame = protocol::encode_request(r, fds);
  auto header = protocol::decode_header(frame, protocol::kMaxRequestPayloadBytes);
  if (!header) return header.status();
  return protocol::decode_request(*header, std::span(frame).subspan(protocol::kHeaderBytes));
}

TEST(ControlProtocol, RequestsRoundTrip) {
  protocol::GroupJoin join;
  join.unique_id = "tern1:127.0.0.1:5000:abc";
  join.rank = 3;
  join.nranks = 8;
  join.local_size = 4;
  join.timeout_ms = 1234;
  join.seed = 99;
  auto r = roundtrip(join, 0);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const auto& j = std::get<protocol::GroupJoin>(*r);
  EXPECT_EQ(j.unique_id, join.unique_id);
  EXPECT_EQ(j.rank, 3);
  EXPECT_EQ(j.nranks, 8);
  EXPECT_EQ(j.local_size, 4);
  EXPECT_EQ(j.timeout_ms, 1234u);
  EXPECT_EQ(j.seed, 99u);

  protocol::Hello hello{0, 1024, 4096, 77};
  auto h = roundtrip(hello, 3);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_EQ(std::get<protocol::Hello>(*h).ring_capacity, 1024u);
  EXPECT_TRUE(roundtrip(protocol::AllocArena{4096}, 1).is_ok());
  EXPECT_TRUE(roundtrip(protocol::StatusRequest{}, 0).is_ok());
}

TEST(ControlProtocol, RejectsWrongFdCountsTruncationAndTrailingBytes) {
  EXPECT_EQ(roundtrip(protocol::AllocArena{4096}, 0).status().code(), StatusCode::kCorruptData);
  EXPECT_EQ(roundtrip(protocol::Hello{0, 1024, 4096, 1}, 0).status().code(), StatusCode::kCorruptData);
  auto frame = protocol::encode_request(protocol::FreeArena{7}, 0);
  auto header = protocol::decode_header(frame, protocol::kMaxRequestPayloadBytes);
  ASSERT_TRUE(header.is_ok());
  // Truncated payload.
  auto cut = *header;
  cut.payload_bytes -= 1;
  auto r = protocol::decode_request(cut, std::span(frame).subspan(protocol::kHeaderBytes, cut.payload_bytes));
  EXPECT_EQ(r.status().code(), StatusCode::kCorruptData);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();
  // Trailing bytes.
  frame.push_back(0);
  auto longer = *header;
  longer.payload_bytes += 1;
  r = protocol::decode_request(longer, std::span(frame).subspan(protocol::kHeaderBytes));
  EXPECT_NE(r.status().message().find("trailing"), std::string::npos) << r.status().message();
}

TEST(ControlProtocol, HeaderChecksMagicVersionTypeAndLimits) {
  auto frame = protocol::encode_request(protocol::StatusRequest{}, 0);
  EXPECT_TRUE(protocol::decode_header(frame, 16).is_ok());
  auto bad = frame;
  bad[0] ^= 1;
  EXPECT_NE(protocol::decode_header(bad, 16).status().message().find("magic"), std::string::npos);
  bad = frame;
  bad[4] = 9;
  EXPECT_NE(protocol::decode_header(bad, 16).status().message().find("version"), std::string::npos);
  bad = frame;
  bad[6] = 200;
  EXPECT_NE(protocol::decode_header(bad, 16).status().message().find("unknown message type"), std::string::npos);
  protocol::FrameHeader huge{static_cast<std::uint16_t>(MessageType::kStatus), 5000, 0};
  protocol::encode_header(huge, bad.data());
  EXPECT_NE(protocol::decode_header(bad, 4096).status().message().find("exceeds"), std::string::npos);
  EXPECT_FALSE(protocol::decode_header(std::span(frame).first(10), 16).is_ok());
  // An over-long string inside a join.
  protocol::GroupJoin join;
  join.unique_id.assign(protocol::kMaxStringBytes + 1, 'x');
  EXPECT_EQ(roundtrip(join, 0).status().code(), StatusCode::kCorruptData);
}

TEST(ControlProtocol, RepliesRoundTripWithStatus) {
  protocol::Reply body;
  body.u32 = 42;
  auto frame = protocol::encode_reply(MessageType::kGroupJoin, Status::ok(), body);
  auto header = protocol::decode_header(frame, protocol::kMaxPayloadBytes);
  ASSERT_TRUE(header.is_ok());
  auto reply = protocol::decode_reply(MessageType::kGroupJoin, *header, std::span(frame).subspan(protocol::kHeaderBytes));
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->u32, 42u);
  frame = protocol::encode_reply(MessageType::kGroupJoin, Status(StatusCode::kTimeout, "late"));
  header = protocol::decode_header(frame, protocol::kMaxPayloadBytes);
  reply = protocol::decode_reply(MessageType::kGroupJoin, *header, std::span(frame).subspan(protocol::kHeaderBytes));
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(reply->code, StatusCode::kTimeout);
  EXPECT_EQ(reply->message, "late");
  // A reply to another request type is rejected.
  EXPECT_FALSE(protocol::decode_reply(MessageType::kStatus, *header, std::span(frame).subspan(protocol::kHeaderBytes)).is_ok());
}

TEST(SharedRing, SubmissionsAndCompletionsFlowAndHostileIndicesAreCaught) {
  const std::uint32_t cap = 4;
  std::vector<std::uint8_t> memory(ring::ring_bytes(cap) + 64);
  void* base = memory.data() + (64 - reinterpret_cast<std::uintptr_t>(memory.data()) % 64) % 64;
  auto client = ring::RingView::initialize(base, ring::ring_bytes(cap), cap);
  ASSERT_TRUE(client.is_ok());
  auto daemon = ring::RingView::attach(base, ring::ring_bytes(cap), cap);
  ASSERT_TRUE(daemon.is_ok()) << daemon.status().to_string();
  EXPECT_FALSE(ring::RingView::attach(base, ring::ring_bytes(cap) - 1, cap).is_ok());
  EXPECT_FALSE(ring::RingView::attach(base, ring::ring_bytes(cap), 3).is_ok());

  for (std::uint64_t i = 1; i <= 3; ++i) {
    ring::Submission s{};
    s.user_data = i;
    client->push_submission(s);
  }
  std::vector<std::uint64_t> seen;
  auto n = daemon->drain_submissions([&](const ring::Submission& s) { seen.push_back(s.user_data); });
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 2, 3}));
  for (std::uint64_t i = 1; i <= 4; ++i) EXPECT_TRUE(daemon->push_completion(i, Status::ok()));
  EXPECT_EQ(daemon->push_completion(5, Status::ok()).code(), StatusCode::kCorruptData);  // full
  std::vector<std::uint64_t> done;
  EXPECT_EQ(client->drain_completions([&](const ring::Completion& c) { done.push_back(c.user_data); }), 4u);
  EXPECT_EQ(done.size(), 4u);
  EXPECT_TRUE(daemon->push_completion(6, Status(StatusCode::kTimeout, std::string(500, 'm'))));
  client->drain_completions([&](const ring::Completion& c) {
    EXPECT_EQ(c.status, static_cast<std::uint32_t>(StatusCode::kTimeout));
    EXPECT_EQ(c.message_bytes, ring::kMessageBytes);  // truncated, never overflowing
  });

  // A client that moves its tail far ahead is caught before anything is read.
  auto* header = static_cast<ring::Header*>(base);
  header->sq_tail += 100;
  EXPECT_EQ(daemon->drain_submissions([](const ring::Submission&) { FAIL(); }).status().code(),
            StatusCode::kCorruptData);
}

}  // namespace
}  // namespace tern::daemon
