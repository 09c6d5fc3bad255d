// The chunk decoder must reject every malformed or truncated chunk with kCorruptData and a message
// that says what is wrong, and accept everything encode() produces.
#include "tern/kernels/wire_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "codec_test_util.h"

namespace tern::kernels {
namespace {

std::vector<std::uint8_t> sample_chunk(Codec codec, std::size_t n = 300, std::uint32_t block = 64) {
  const auto x = testing::gaussian(n, 11);
  EncodeOptions o;
  o.codec = codec;
  o.block_size = block;
  return testing::encode_or_die(x.data(), DType::kF32, n, nullptr, o);
}

void expect_corrupt(const std::vector<std::uint8_t>& chunk, const std::string& needle) {
  const auto view = parse_chunk(chunk);
  ASSERT_FALSE(view.is_ok()) << "accepted a chunk that should fail with '" << needle << "'";
  EXPECT_EQ(view.status().code(), StatusCode::kCorruptData);
  EXPECT_NE(view.status().message().find(needle), std::string::npos) << view.status().message();
  std::vector<float> out(std::max<std::size_t>(1, 300));
  EXPECT_EQ(decode(chunk, out.data(), DType::kF32, 300).code(), StatusCode::kCorruptData);
}

TEST(WireFormat, HeaderFieldsRoundTrip) {
  const auto chunk = sample_chunk(Codec::kTernGrad, 300, 64);
  const auto view = parse_chunk(chunk);
  ASSERT_TRUE(view.is_ok()) << view.status().to_string();
  EXPECT_EQ(view->header.codec, Codec::kTernGrad);
  EXPECT_EQ(view->header.block_size, 64u);
  EXPECT_EQ(view->header.count, 300u);
  EXPECT_FALSE(view->header.clipped);
  EXPECT_EQ(view->layout.scale_count, 5u);
  EXPECT_EQ(view->layout.code_bytes, 75u);
  EXPECT_EQ(chunk[0], 'T');
  EXPECT_EQ(chunk[1], 'N');
  EXPECT_EQ(chunk[2], kWireVersion);
  EXPECT_EQ(chunk[4], 6) << "log2(64)";
}

TEST(WireFormat, AcceptsEveryCodecAndOddSize) {
  for (Codec codec : testing::kAllCodecs)
    for (std::size_t n : {0u, 1u, 3u, 31u, 32u, 33u, 1000u})
      EXPECT_TRUE(parse_chunk(sample_chunk(codec, n, 32)).is_ok()) << codec_name(codec) << " n=" << n;
}

TEST(WireFormat, RejectsTruncatedAndExtended) {
  const auto chunk = sample_chunk(Codec::kTernGrad);
  for (std::size_t len : {std::size_t{0}, std::size_t{1}, kChunkHeaderBytes - 1}) {
    const std::vector<std::uint8_t> cut(chunk.begin(), chunk.begin() + static_cast<long>(len));
    expect_corrupt(cut, "shorter than its 16-byte header");
  }
  for (std::size_t len : {kChunkHeaderBytes, chunk.size() - 1}) {
    const std::vector<std::uint8_t> cut(chunk.begin(), chunk.begin() + static_cast<long>(len));
    expect_corrupt(cut, "truncated");
  }
  auto longer = chunk;
  longer.push_back(0);
  expect_corrupt(longer, "trailing bytes");
}

TEST(WireFormat, RejectsBadHeaderFields) {
  const auto good = sample_chunk(Codec::kTernGrad);
  auto c = good;
  c[0] = 'X';
  expect_corrupt(c, "magic");
  c = good;
  c[2] = 2;
  expect_corrupt(c, "version 2");
  c = good;
  c[3] = 6;
  expect_corrupt(c, "unknown codec 6");
  c = good;
  c[4] = 4;
  expect_corrupt(c, "block size 2^4");
  c = good;
  c[4] = 13;
  expect_corrupt(c, "block size 2^13");
  c = good;
  c[5] = 0x02;
  expect_corrupt(c, "unknown flags");
  c = good;
  c[7] = 1;
  expect_corrupt(c, "reserved");
  c = good;
  c[8] = static_cast<std::uint8_t>(c[8] + 8);  // count 308: needs 100 payload bytes, header says 96
  expect_corrupt(c, "payload bytes");
  c = good;
  c[12] = static_cast<std::uint8_t>(c[12] + 4);
  expect_corrupt(c, "payload bytes");
  auto cast = sample_chunk(Codec::kFp32);
  cast[4] = 5;
  expect_corrupt(cast, "must be 0");
  auto sign = sample_chunk(Codec::kSignEf);
  sign[5] = kFlagClipped;
  expect_corrupt(sign, "unknown flags");
}

TEST(WireFormat, RejectsBadScales) {
  const auto good = sample_chunk(Codec::kTernaryEf);
  for (float bad : {std::numeric_limits<float>::infinity(), std::nanf(""), -1.0f, -0.0f}) {
    auto c = good;
    std::memcpy(c.data() + kChunkHeaderBytes + 4 * 2, &bad, 4);
    expect_corrupt(c, "scale 2");
  }
}

TEST(WireFormat, RejectsNonZeroPaddingAndUnusedBits) {
  // 300 elements at 2 bits = 75 code bytes, all used; 5 scales: payload 95 -> 96, one pad byte.
  auto c = sample_chunk(Codec::kTernGrad);
  c.back() = 1;
  expect_corrupt(c, "padding");
  // 299 elements: the last code byte uses 6 of its 8 bits.
  auto odd = sample_chunk(Codec::kTernGrad, 299);
  const auto view = *parse_chunk(odd);
  const std::size_t last = static_cast<std::size_t>(view.codes - odd.data()) + view.layout.code_bytes - 1;
  odd[last] = static_cast<std::uint8_t>(odd[last] | 0x80);
  const auto v = parse_chunk(odd);
  ASSERT_FALSE(v.is_ok());
  EXPECT_NE(v.status().message().find("after its last code"), std::string::npos);
}

TEST(WireFormat, DecodersRejectInvalidTernaryCodes) {
  auto c = sample_chunk(Codec::kTernGrad);
  const auto view = *parse_chunk(c);
  const std::size_t first_code = static_cast<std::size_t>(view.codes - c.data());
  c[first_code + 10] = 0x2A;  // codes 10,10,10,00: three invalid
  ASSERT_TRUE(parse_chunk(c).is_ok()) << "codes are checked by the decoders, not the parser";
  std::vector<float> out(300);
  const Status s = decode(c, out.data(), DType::kF32, 300);
  EXPECT_EQ(s.code(), StatusCode::kCorruptData);
  EXPECT_NE(s.message().find("3 invalid codes"), std::string::npos) << s.message();
  EXPECT_EQ(decode_accumulate(c, out.data(), 300).code(), StatusCode::kCorruptData);
}

TEST(WireFormat, DecodersRejectNonFiniteCastValues) {
  // Found by the fuzzer: encode never puts NaN/Inf into a cast chunk, so a chunk holding one is corrupt.
  for (Codec codec : {Codec::kFp32, Codec::kFp16, Codec::kBf16}) {
    auto c = sample_chunk(codec, 10);
    const auto view = *parse_chunk(c);
    const std::size_t at = static_cast<std::size_t>(view.codes - c.data()) + 3 * codec_code_bits(codec) / 8;
    if (codec == Codec::kFp32) {
      const float nan = std::nanf("");
      std::memcpy(c.data() + at, &nan, 4);
    } else {
      c[at] = 0x80;
      c[at + 1] = codec == Codec::kFp16 ? 0x7C : 0x7F;  // -Inf... +Inf patterns: 0x7C80 is a NaN in fp16
    }
    std::vector<float> out(10);
    const Status s = decode(c, out.data(), DType::kF32, 10);
    EXPECT_EQ(s.code(), StatusCode::kCorruptData) << codec_name(codec);
    EXPECT_NE(s.message().find("1 invalid code"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace tern::kernels
