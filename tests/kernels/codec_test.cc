// Functional tests of the public codec API: names, sizes, round trips, options, chunking.
#include <gtest/gtest.h>

#include <cmath>

#include "codec_test_util.h"
#include "tern/kernels/wire_format.h"

namespace tern::kernels {
namespace {

using testing::as_dtype;
using testing::decode_or_die;
using testing::encode_or_die;
using testing::gaussian;

TEST(CodecNames, RoundTripAndRejectUnknown) {
  for (Codec c : testing::kAllCodecs) EXPECT_EQ(*parse_codec(codec_name(c)), c);
  for (DType d : testing::kAllDTypes) EXPECT_EQ(*parse_dtype(dtype_name(d)), d);
  EXPECT_EQ(parse_codec("ternary").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_dtype("int8").status().code(), StatusCode::kInvalidArgument);
}

TEST(EncodedSize, FollowsTheLayout) {
  // 1000 terngrad elements, blocks of 128: 8 scales (32 B) + 250 code bytes -> 282, padded to 284.
  EXPECT_EQ(*encoded_size(Codec::kTernGrad, 128, 1000), kChunkHeaderBytes + 284);
  EXPECT_EQ(*encoded_size(Codec::kSignEf, 32, 33), kChunkHeaderBytes + 8 + 8);
  EXPECT_EQ(*encoded_size(Codec::kFp16, 0, 3), kChunkHeaderBytes + 8);
  EXPECT_EQ(*encoded_size(Codec::kFp32, 12345, 0), kChunkHeaderBytes);  // block size ignored by casts
  EXPECT_EQ(encoded_size(Codec::kTernGrad, 100, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(encoded_size(Codec::kTernGrad, 16, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(encoded_size(Codec::kTernGrad, 8192, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(encoded_size(Codec::kFp32, 0, kMaxChunkElements + 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(Encode, RejectsBadArguments) {
  const auto x = gaussian(64, 1);
  std::vector<std::uint8_t> out(4096);
  std::vector<float> residual(64);
  EncodeOptions o;
  o.codec = Codec::kTernGrad;
  EXPECT_EQ(encode(x.data(), DType::kF32, 64, residual.data(), o, out).code(), StatusCode::kInvalidArgument)
      << "terngrad takes no residual";
  o.clip = true;
  o.clip_sigmas = -1.0f;
  EXPECT_EQ(encode(x.data(), DType::kF32, 64, nullptr, o, out).code(), StatusCode::kInvalidArgument);
  o = EncodeOptions{};
  o.codec = Codec::kSignEf;
  o.clip = true;
  EXPECT_EQ(encode(x.data(), DType::kF32, 64, nullptr, o, out).code(), StatusCode::kInvalidArgument);
  o = EncodeOptions{};
  EXPECT_EQ(encode(x.data(), DType::kF32, 64, nullptr, o, std::span(out).first(20)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(encode(nullptr, DType::kF32, 64, nullptr, o, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(encode(x.data(), static_cast<DType>(7), 64, nullptr, o, out).code(), StatusCode::kInvalidArgument);
}

TEST(CastCodecs, RoundTripExactlyWhereTheFormatCan) {
  const auto x = gaussian(1001, 2, 3.0f);
  for (DType dtype : testing::kAllDTypes) {
    const auto input = as_dtype(x, dtype);
    for (Codec codec : {Codec::kFp32, Codec::kFp16, Codec::kBf16}) {
      EncodeOptions o;
      o.codec = codec;
      const auto chunk = encode_or_die(input.data(), dtype, x.size(), nullptr, o);
      for (DType out_dtype : testing::kAllDTypes) {
        std::vector<std::uint8_t> out(x.size() * dtype_size(out_dtype));
        ASSERT_TRUE(decode(chunk, out.data(), out_dtype, x.size()).is_ok());
        // Expected: widen(input) -> codec's rounding -> out dtype's rounding.
        for (std::size_t i = 0; i < x.size(); ++i) {
          float v = dtype == DType::kF32 ? x[i]
                    : dtype == DType::kF16 ? fp16_to_float(float_to_fp16(x[i]))
                                           : bf16_to_float(float_to_bf16(x[i]));
          if (codec == Codec::kFp16) v = fp16_to_float(float_to_fp16(v));
          if (codec == Codec::kBf16) v = bf16_to_float(float_to_bf16(v));
          const auto expected = as_dtype({v}, out_dtype);
          ASSERT_EQ(0, std::memcmp(out.data() + i * expected.size(), expected.data(), expected.size()))
              << codec_name(codec) << " " << dtype_name(dtype) << "->" << dtype_name(out_dtype) << " element " << i;
        }
      }
    }
  }
}

TEST(TernGrad, CodesAreZeroOrPlusMinusTheBlockMax) {
  const auto x = gaussian(5000, 3);
  EncodeOptions o;
  o.seed = 42;
  const auto chunk = encode_or_die(x.data(), DType::kF32, x.size(), nullptr, o);
  const auto y = decode_or_die(chunk, x.size());
  for (std::size_t b = 0; b * o.block_size < x.size(); ++b) {
    float amax = 0;
    const std::size_t end = std::min(x.size(), (b + 1) * o.block_size);
    for (std::size_t i = b * o.block_size; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    for (std::size_t i = b * o.block_size; i < end; ++i) {
      ASSERT_TRUE(y[i] == 0.0f || std::fabs(y[i]) == amax) << i;
      if (y[i] != 0.0f) { ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i])) << i; }
      if (x[i] == 0.0f) { ASSERT_EQ(y[i], 0.0f) << i; }
      if (std::fabs(x[i]) == amax) { ASSERT_EQ(y[i], x[i]) << "the block max is always kept"; }
    }
  }
}

TEST(TernGrad, ClippingCapsTheScaleAtCSigma) {
  auto x = gaussian(128, 4);
  x[10] = 100.0f;  // an outlier the clip must cut
  EncodeOptions o;
  o.clip = true;
  const auto chunk = encode_or_die(x.data(), DType::kF32, x.size(), nullptr, o);
  double sumsq = 0;
  for (float v : x) sumsq += double(v) * v;
  const double expected_scale = 2.5 * std::sqrt(sumsq / 128);
  const auto view = parse_chunk(chunk);
  ASSERT_TRUE(view.is_ok());
  EXPECT_TRUE(view->header.clipped);
  float scale;
  std::memcpy(&scale, view->scales, 4);
  EXPECT_NEAR(scale, expected_scale, 1e-5 * expected_scale);
  const auto y = decode_or_die(chunk, x.size());
  EXPECT_EQ(y[10], scale) << "a clipped element is always sent, at the clip value";
}

TEST(TernaryEf, ThresholdsAtHalfTheMeanMagnitude) {
  const std::vector<float> x = {4.0f, -1.0f, 0.9f, -3.0f, 0.0f, 2.0f, -0.5f, 0.6f};  // mean|x| = 1.5
  std::vector<float> padded(32, 0.0f);
  std::copy(x.begin(), x.end(), padded.begin());  // one block of 32: mean = 12/32 = 0.375, Δ = 0.1875
  EncodeOptions o;
  o.codec = Codec::kTernaryEf;
  o.block_size = 32;
  const auto y = decode_or_die(encode_or_die(padded.data(), DType::kF32, 32, nullptr, o), 32);
  const float a = 12.0f / 32.0f;
  const std::vector<float> expected = {a, -a, a, -a, 0, a, -a, a};
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(y[i], expected[i]) << i;
  for (std::size_t i = expected.size(); i < 32; ++i) EXPECT_EQ(y[i], 0.0f) << i;
}

TEST(SignEf, SendsSignTimesMeanMagnitude) {
  const auto x = gaussian(300, 5);
  EncodeOptions o;
  o.codec = Codec::kSignEf;
  o.block_size = 64;
  const auto y = decode_or_die(encode_or_die(x.data(), DType::kF32, x.size(), nullptr, o), x.size());
  for (std::size_t b = 0; b * 64 < x.size(); ++b) {
    const std::size_t end = std::min(x.size(), (b + 1) * 64);
    double mean = 0;
    for (std::size_t i = b * 64; i < end; ++i) mean += std::fabs(x[i]);
    mean /= double(end - b * 64);
    for (std::size_t i = b * 64; i < end; ++i) {
      EXPECT_NEAR(std::fabs(y[i]), mean, 1e-5 * mean);
      EXPECT_EQ(y[i] < 0, x[i] < 0) << i;
    }
  }
}

TEST(Encode, ChunkingAtBlockBoundariesGivesTheSameBytes) {
  const std::size_t n = 10 * 256 + 77;
  const auto x = gaussian(n, 6);
  for (Codec codec : testing::kAllCodecs) {
    EncodeOptions o;
    o.codec = codec;
    o.block_size = 256;
    o.seed = 9;
    o.stream = 3;
    const auto whole = encode_or_die(x.data(), DType::kF32, n, nullptr, o);
    const auto whole_view = *parse_chunk(whole);
    // Pieces of 3, 5 and 2 blocks plus the tail, encoded separately with their element offsets.
    std::size_t begin = 0;
    for (std::size_t blocks : {3u, 5u, 3u}) {
      const std::size_t m = std::min<std::size_t>(blocks * 256, n - begin);
      o.element_offset = begin;
      const auto piece = encode_or_die(x.data() + begin, DType::kF32, m, nullptr, o);
      const auto view = *parse_chunk(piece);
      const unsigned bits = codec_code_bits(codec);
      EXPECT_EQ(0, std::memcmp(view.codes, whole_view.codes + begin * bits / 8, view.layout.code_bytes))
          << codec_name(codec) << " codes of the piece at " << begin;
      EXPECT_EQ(0, std::memcmp(view.scales, whole_view.scales + 4 * (begin / 256), 4 * view.layout.scale_count))
          << codec_name(codec) << " scales of the piece at " << begin;
      begin += m;
    }
    EXPECT_EQ(begin, n);
  }
}

TEST(Encode, SeedAndStreamChangeTernGradCodesOnly) {
  const auto x = gaussian(4096, 7);
  EncodeOptions a;
  a.seed = 1;
  EncodeOptions b = a;
  b.stream = 1;
  EXPECT_EQ(encode_or_die(x.data(), DType::kF32, x.size(), nullptr, a),
            encode_or_die(x.data(), DType::kF32, x.size(), nullptr, a));
  EXPECT_NE(encode_or_die(x.data(), DType::kF32, x.size(), nullptr, a),
            encode_or_die(x.data(), DType::kF32, x.size(), nullptr, b));
  a.codec = b.codec = Codec::kTernaryEf;
  EXPECT_EQ(encode_or_die(x.data(), DType::kF32, x.size(), nullptr, a),
            encode_or_die(x.data(), DType::kF32, x.size(), nullptr, b));
}

TEST(DecodeAccumulate, AddsEveryElement) {
  const auto x = gaussian(777, 8);
  for (Codec codec : testing::kAllCodecs) {
    EncodeOptions o;
    o.codec = codec;
    const auto chunk = encode_or_die(x.data(), DType::kF32, x.size(), nullptr, o);
    const auto y = decode_or_die(chunk, x.size());
    std::vector<float> acc = gaussian(x.size(), 9);
    std::vector<float> expected(acc);
    for (std::size_t i = 0; i < acc.size(); ++i) expected[i] += y[i];
    ASSERT_TRUE(decode_accumulate(chunk, acc.data(), acc.size()).is_ok());
    for (std::size_t i = 0; i < acc.size(); ++i)
      ASSERT_EQ(testing::bits_of(acc[i]), testing::bits_of(expected[i])) << codec_name(codec) << " " << i;
  }
}

TEST(Decode, RejectsCountMismatchAndNarrowOverflow) {
  const std::vector<float> x = {1e10f, -2.0f};
  EncodeOptions o;
  o.codec = Codec::kFp32;
  const auto chunk = encode_or_die(x.data(), DType::kF32, 2, nullptr, o);
  std::vector<float> out(3);
  EXPECT_EQ(decode(chunk, out.data(), DType::kF32, 3).code(), StatusCode::kInvalidArgument);
  std::vector<std::uint16_t> half(2);
  const Status s = decode(chunk, half.data(), DType::kF16, 2);
  EXPECT_EQ(s.code(), StatusCode::kNonFinite);
  EXPECT_NE(s.message().find("fp16"), std::string::npos) << s.message();
  EXPECT_TRUE(decode(chunk, half.data(), DType::kBf16, 2).is_ok()) << "1e10 fits bf16";
}

TEST(Encode, ZeroElementsMakeAHeaderOnlyChunk) {
  for (Codec codec : testing::kAllCodecs) {
    EncodeOptions o;
    o.codec = codec;
    const auto chunk = encode_or_die(nullptr, DType::kF32, 0, nullptr, o);
    EXPECT_EQ(chunk.size(), kChunkHeaderBytes);
    EXPECT_TRUE(decode(chunk, nullptr, DType::kF32, 0).is_ok());
    EXPECT_TRUE(decode_accumulate(chunk, nullptr, 0).is_ok());
  }
}

}  // namespace
}  // namespace tern::kernels
