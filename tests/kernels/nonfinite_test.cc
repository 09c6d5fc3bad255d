// The non-finite policy: NaN/Inf in the input or residual, or a cast overflow, makes encode()
// return kNonFinite with the count and the first index, and never produces a usable chunk.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "codec_test_util.h"

namespace tern::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(NonFinite, EveryCodecAndDTypeReportsCountAndFirstIndex) {
  const std::size_t n = 2000;
  for (Codec codec : testing::kAllCodecs) {
    for (DType dtype : testing::kAllDTypes) {
      auto g = testing::gaussian(n, 12);
      g[1500] = std::nanf("");
      g[17] = kInf;
      g[999] = -kInf;
      const auto input = testing::as_dtype(g, dtype);
      EncodeOptions o;
      o.codec = codec;
      std::vector<std::uint8_t> out(*encoded_size(codec, o.block_size, n));
      EncodeReport report;
      const Status s = encode(input.data(), dtype, n, nullptr, o, out, &report);
      EXPECT_EQ(s.code(), StatusCode::kNonFinite) << codec_name(codec) << "/" << dtype_name(dtype);
      EXPECT_EQ(report.nonfinite_count, 3u) << codec_name(codec) << "/" << dtype_name(dtype);
      EXPECT_EQ(report.first_nonfinite, 17u);
      EXPECT_EQ(report.bytes, 0u);
      EXPECT_NE(s.message().find("3 non-finite values"), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("element 17"), std::string::npos) << s.message();
    }
  }
}

TEST(NonFinite, ResidualIsCheckedAndNeverWritten) {
  const std::size_t n = 300;
  const auto g = testing::gaussian(n, 13);
  for (Codec codec : {Codec::kTernaryEf, Codec::kSignEf}) {
    std::vector<float> residual(n, 0.25f);
    residual[299] = std::nanf("");
    const std::vector<float> before(residual);
    EncodeOptions o;
    o.codec = codec;
    std::vector<std::uint8_t> out(*encoded_size(codec, o.block_size, n));
    EncodeReport report;
    EXPECT_EQ(encode(g.data(), DType::kF32, n, residual.data(), o, out, &report).code(), StatusCode::kNonFinite);
    EXPECT_EQ(report.first_nonfinite, 299u);
    EXPECT_EQ(0, std::memcmp(before.data(), residual.data(), n * 4)) << "encode must not touch the residual";
  }
}

TEST(NonFinite, SumOverflowToInfInResidualAddIsCaught) {
  // Both finite, their sum is not: x = g + e overflows.
  std::vector<float> g(64, 3e38f), residual(64, 3e38f);
  EncodeOptions o;
  o.codec = Codec::kSignEf;
  std::vector<std::uint8_t> out(*encoded_size(o.codec, o.block_size, 64));
  EncodeReport report;
  EXPECT_EQ(encode(g.data(), DType::kF32, 64, residual.data(), o, out, &report).code(), StatusCode::kNonFinite);
  EXPECT_EQ(report.nonfinite_count, 64u);
}

TEST(NonFinite, AnOverflowingBlockScaleIsReported) {
  // Every element is finite, but mean|x| of a block of them is not (the sum passes FLT_MAX).
  std::vector<float> g(256, 1.0f);
  for (std::size_t i = 128; i < 256; ++i) g[i] = 3e38f;
  EncodeOptions o;
  o.codec = Codec::kSignEf;
  std::vector<std::uint8_t> out(*encoded_size(o.codec, o.block_size, g.size()));
  EncodeReport report;
  const Status s = encode(g.data(), DType::kF32, g.size(), nullptr, o, out, &report);
  EXPECT_EQ(s.code(), StatusCode::kNonFinite);
  EXPECT_EQ(report.first_nonfinite, 128u) << "first element of the overflowing block";
  EXPECT_NE(s.message().find("block scale"), std::string::npos) << s.message();
}

TEST(NonFinite, CastOverflowIsReported) {
  std::vector<float> g = {1.0f, 70000.0f, -65520.0f, 65504.0f};
  EncodeOptions o;
  o.codec = Codec::kFp16;
  std::vector<std::uint8_t> out(*encoded_size(o.codec, 0, g.size()));
  EncodeReport report;
  const Status s = encode(g.data(), DType::kF32, g.size(), nullptr, o, out, &report);
  EXPECT_EQ(s.code(), StatusCode::kNonFinite);
  EXPECT_EQ(report.nonfinite_count, 2u);
  EXPECT_EQ(report.first_nonfinite, 1u);
  EXPECT_NE(s.message().find("overflow of fp16"), std::string::npos) << s.message();
  o.codec = Codec::kBf16;
  EXPECT_TRUE(encode(g.data(), DType::kF32, g.size(), nullptr, o, out, &report).is_ok()) << "bf16 has fp32's range";
}

TEST(NonFinite, LargeFiniteValuesAreFine) {
  std::vector<float> g(256, 1e30f);
  g[3] = -3.3e38f;  // below bf16's largest finite value (FLT_MAX itself rounds to Inf in bf16)
  g[4] = std::numeric_limits<float>::denorm_min();
  for (Codec codec : {Codec::kFp32, Codec::kBf16, Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf}) {
    EncodeOptions o;
    o.codec = codec;
    const auto chunk = testing::encode_or_die(g.data(), DType::kF32, g.size(), nullptr, o);
    const auto y = testing::decode_or_die(chunk, g.size());
    for (float v : y) EXPECT_TRUE(std::isfinite(v)) << codec_name(codec);
  }
}

}  // namespace
}  // namespace tern::kernels
