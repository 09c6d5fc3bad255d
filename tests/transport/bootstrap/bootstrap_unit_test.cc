// UniqueId text form and the wire protocol's pure encode/decode.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tern/transport/bootstrap.h"
#include "wire.h"

namespace tern::transport {
namespace {

namespace wire = bootstrap_wire;

std::string hex_of(const UniqueId& id) { return id.to_string().substr(id.to_string().size() - 64); }

TEST(BootstrapUniqueId, GenerateAndRoundTrip) {
  auto id = UniqueId::generate("node-7.example", 29500);
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_TRUE(id->complete());
  const std::string text = id->to_string();
  EXPECT_TRUE(std::regex_match(text, std::regex("tern1:node-7\\.example:29500:[0-9a-f]{64}"))) << "format changed";
  auto back = UniqueId::parse(text);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(*back == *id);
  EXPECT_EQ(back->host(), "node-7.example");
  EXPECT_EQ(back->port(), 29500);
  EXPECT_EQ(id->redacted(), "tern1:node-7.example:29500:<secret>");
  EXPECT_EQ(id->address(), "node-7.example:29500");

  auto other = UniqueId::generate("node-7.example", 29500);
  ASSERT_TRUE(other.is_ok());
  EXPECT_FALSE(*other == *id) << "two secrets drawn from the CSPRNG are equal";
}

TEST(BootstrapUniqueId, PortZeroIsIncompleteUntilTheRootBinds) {
  auto id = UniqueId::generate("127.0.0.1", 0);
  ASSERT_TRUE(id.is_ok());
  EXPECT_FALSE(id->complete());
  const UniqueId bound = id->with_port(4242);
  EXPECT_TRUE(bound.complete());
  EXPECT_EQ(bound.secret(), id->secret());
  auto parsed = UniqueId::parse(id->to_string());
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_FALSE(parsed->complete());
}

TEST(BootstrapUniqueId, Ipv6HostsAreBracketed) {
  auto id = UniqueId::generate("fe80::1", 1234);
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_EQ(id->to_string().substr(0, 21), "tern1:[fe80::1]:1234:");
  auto back = UniqueId::parse(id->to_string());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->host(), "fe80::1");
  EXPECT_TRUE(*back == *id);
}

TEST(BootstrapUniqueId, ParseToleratesSurroundingWhitespace) {
  auto id = UniqueId::generate("10.0.0.1", 5);
  ASSERT_TRUE(id.is_ok());
  auto back = UniqueId::parse("  " + id->to_string() + "\n");
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(*back == *id);
}

TEST(BootstrapUniqueId, ParseErrorsAreClearAndNeverEchoTheSecret) {
  auto id = UniqueId::generate("10.0.0.1", 29500);
  ASSERT_TRUE(id.is_ok());
  const std::string hex = hex_of(*id);
  struct Case {
    std::string text;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"nccl:10.0.0.1:29500:" + hex, "not a tern unique id"},
      {"tern2:10.0.0.1:29500:" + hex, "unsupported format version"},
      {"tern1:10.0.0.1:29500:" + hex.substr(1), "64 hex digits"},
      {"tern1:10.0.0.1:29500:" + hex + "00", "64 hex digits"},
      {"tern1:10.0.0.1:29500:" + hex.substr(0, 10) + "x" + hex.substr(11), "non-hex character at position 10"},
      {"tern1:10.0.0.1:port:" + hex, "port must be a number"},
      {"tern1:10.0.0.1:70000:" + hex, "port must be a number"},
      {"tern1:10.0.0.1" + hex, "no ':' after the host"},
      {"tern1:fe80::1:29500:" + hex, "must be bracketed"},
      {"tern1::29500:" + hex, "host is empty"},
      {"tern1:[fe80::1:29500:" + hex, "[ADDRESS]"},
      {"tern1:" + hex, "no ':' after the host"},
      {"tern1:29500:" + hex, "no port"},
  };
  for (const auto& c : cases) {
    auto r = UniqueId::parse(c.text);
    ASSERT_FALSE(r.is_ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
    // Not even a part of the secret leaks into the message.
    EXPECT_EQ(r.status().message().find(hex.substr(0, 8)), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find(hex.substr(40, 8)), std::string::npos) << r.status().message();
  }
}

TEST(BootstrapUniqueId, GenerateRejectsBadHosts) {
  for (const std::string& host : std::vector<std::string>{"", "two words", "[::1]", std::string(300, 'a')}) {
    auto r = UniqueId::generate(host, 1);
    EXPECT_FALSE(r.is_ok()) << host;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
}

// --- wire ------------------------------------------------------------------------------------

std::vector<wire::Message> one_of_each() {
  wire::Nonce nonce{};
  wire::Mac mac{};
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    nonce[i] = static_cast<std::uint8_t>(i);
    mac[i] = static_cast<std::uint8_t>(255 - i);
  }
  return {
      wire::Hello{wire::kProtocolVersion, nonce},
      wire::Challenge{wire::kProtocolVersion, nonce, mac, 1000, 5000},
      wire::Join{3, true, "node-3", {9, 8, 7}, mac},
      wire::Join{-1, false, "n", {}, mac},
      wire::Progress{8, 5, 3, {1, 4, 7}},
      wire::Welcome{2, 4, 0},
      wire::Welcome{0, 1, -1},
      wire::Table{{{"a", {1}}, {"bb", {}}, {"c.example", {1, 2, 3}}}},
      wire::Heartbeat{},
      wire::Contribute{7, wire::CollectiveKind::kAllgather, {1, 2, 3, 4}},
      wire::Contribute{8, wire::CollectiveKind::kBarrier, {}},
      wire::Gathered{7, wire::CollectiveKind::kAllgather, {{1}, {}, {2, 3}}},
      wire::CollectiveFailed{9, StatusCode::kInvalidArgument, "collective #9 mismatch"},
      wire::PeerFailed{2, wire::FailureKind::kSilent, 5100, "rank 2 (host n2) is silent for 5.1 s"},
      wire::Leave{},
      wire::Goodbye{},
      wire::Error{StatusCode::kTimeout, "group formation timed out"},
  };
}

TEST(BootstrapWire, EveryMessageRoundTrips) {
  for (const auto& m : one_of_each()) {
    const auto frame = wire::encode(m);
    ASSERT_GE(frame.size(), wire::kHeaderBytes);
    EXPECT_EQ(frame[0], static_cast<std::uint8_t>(wire::type_of(m)));
    auto back = wire::decode_frame(frame);
    ASSERT_TRUE(back.is_ok()) << wire::type_name(wire::type_of(m)) << ": " << back.status().to_string();
    EXPECT_TRUE(*back == m) << wire::type_name(wire::type_of(m));
    EXPECT_EQ(wire::encode(*back), frame);
  }
}

TEST(BootstrapWire, HeaderRejectsOversizedLengthsBeforeAnythingIsAllocated) {
  const std::vector<std::uint8_t> huge = {1, 0xff, 0xff, 0xff, 0xff};
  auto h = wire::decode_header(huge, wire::kMaxFrameBytes);
  ASSERT_FALSE(h.is_ok());
  EXPECT_EQ(h.status().code(), StatusCode::kCorruptData);
  EXPECT_NE(h.status().message().find("announces 4294967295 bytes, more than the 268435456 allowed"), std::string::npos)
      << h.status().message();
  // The context's limit applies: a join of 100 KiB before authentication is refused.
  const std::vector<std::uint8_t> join = {3, 0x00, 0x90, 0x01, 0x00};
  EXPECT_FALSE(wire::decode_header(join, wire::kMaxJoinFrame).is_ok());
  EXPECT_TRUE(wire::decode_header(join, wire::kMaxMemberFrame).is_ok());
}

TEST(BootstrapWire, RejectsUnknownTypes) {
  for (const std::uint8_t type : std::vector<std::uint8_t>{0, 15, 200, 255}) {
    const std::vector<std::uint8_t> frame = {type, 0, 0, 0, 0};
    auto r = wire::decode_frame(frame);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("type " + std::to_string(type) + " is unknown"), std::string::npos);
  }
}

TEST(BootstrapWire, EveryTruncationAndEveryTrailingByteIsRejected) {
  for (const auto& m : one_of_each()) {
    const auto frame = wire::encode(m);
    for (std::size_t cut = 0; cut < frame.size(); ++cut) {
      std::vector<std::uint8_t> shorter(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(cut));
      EXPECT_FALSE(wire::decode_frame(shorter).is_ok()) << wire::type_name(wire::type_of(m)) << " cut at " << cut;
      // Also with a header that agrees with the shorter length: the message itself is truncated.
      if (cut > wire::kHeaderBytes) {
        const auto len = static_cast<std::uint32_t>(cut - wire::kHeaderBytes);
        for (std::size_t i = 0; i < 4; ++i) shorter[1 + i] = static_cast<std::uint8_t>(len >> (8 * i));
        EXPECT_FALSE(wire::decode_frame(shorter).is_ok()) << wire::type_name(wire::type_of(m)) << " cut at " << cut;
      }
    }
    auto longer = frame;
    longer.push_back(0);
    EXPECT_FALSE(wire::decode_frame(longer).is_ok()) << "frame longer than its header says";
    const auto len = static_cast<std::uint32_t>(longer.size() - wire::kHeaderBytes);
    for (std::size_t i = 0; i < 4; ++i) longer[1 + i] = static_cast<std::uint8_t>(len >> (8 * i));
    EXPECT_FALSE(wire::decode_frame(longer).is_ok()) << wire::type_name(wire::type_of(m)) << " accepted a trailing byte";
  }
}

TEST(BootstrapWire, RejectsInvalidFields) {
  auto bad = [](const wire::Message& m, std::size_t offset, std::uint8_t value, const char* says) {
    auto frame = wire::encode(m);
    frame[offset] = value;
    auto r = wire::decode_frame(frame);
    ASSERT_FALSE(r.is_ok()) << says;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruptData);
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
  };
  const wire::Mac mac{};
  bad(wire::Hello{}, 5, 'X', "bad magic");
  bad(wire::Join{1, false, "ab", {}, mac}, 5 + 5 + 1, ' ', "not printable");  // space inside the host
  bad(wire::Join{1, false, "ab", {}, mac}, 5 + 4, 2, "unknown flags");
  bad(wire::Error{StatusCode::kTimeout, "x"}, 5, 0, "not an error code");
  bad(wire::Error{StatusCode::kTimeout, "x"}, 5 + 3, 0x07, "not printable");
  bad(wire::Welcome{1, 2, 0}, 5, 2, "out of range");
  bad(wire::Contribute{1, wire::CollectiveKind::kBarrier, {}}, 5 + 8, 3, "collective kind 3");
  bad(wire::PeerFailed{1, wire::FailureKind::kLeft, 0, ""}, 5 + 4, 9, "failure kind 9");
  bad(wire::Progress{4, 1, 2, {1, 3}}, 5 + 18, 0, "not ascending");
}

TEST(BootstrapWire, CountsAreCheckedAgainstTheBytesPresent) {
  // A table claiming 65536 entries in a few bytes is refused before anything is reserved.
  std::vector<std::uint8_t> table = {6, 4, 0, 0, 0, 0x00, 0x00, 0x01, 0x00};
  auto r = wire::decode_frame(table);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("table of 65536 entries does not fit 0 bytes"), std::string::npos)
      << r.status().message();
  std::vector<std::uint8_t> gathered = {9, 13, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0};
  r = wire::decode_frame(gathered);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("does not fit"), std::string::npos) << r.status().message();
}

TEST(BootstrapWire, OtherProtocolVersionsAreRecognisedNotParsed) {
  std::vector<std::uint8_t> frame = {1, 14, 0, 0, 0, 'T', 'E', 'R', 'N', 'B', 'O', 'O', 'T', 2, 0, 'n', 'e', 'w', 0};
  auto r = wire::decode_frame(frame);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(std::get<wire::Hello>(*r).version, 2);
}

TEST(BootstrapWire, EncodeSanitizesMessages) {
  const auto frame = wire::encode(wire::Error{StatusCode::kInternal, std::string("a\nb") + std::string(2000, 'c')});
  auto r = wire::decode_frame(frame);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const auto& e = std::get<wire::Error>(*r);
  EXPECT_EQ(e.message.size(), wire::kMaxMessageBytes);
  EXPECT_EQ(e.message.substr(0, 3), "a?b");
}

}  // namespace
}  // namespace tern::transport
