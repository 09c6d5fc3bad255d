// Error feedback telescopes: after T steps of x_t = g_t + e_t, q_t = Q(x_t), e_{t+1} = x_t − q_t,
// Σ q_t + e_T = Σ g_t. In fp32 each step rounds twice (the add and the subtract), each by at most
// half an ulp: the test tracks that bound in double and asserts the identity within it.
#include <gtest/gtest.h>

#include <cmath>

#include "codec_test_util.h"

namespace tern::kernels {
namespace {

void check_telescoping(Codec codec, DType dtype, std::uint32_t block, std::size_t n, int steps) {
  std::vector<float> residual(n, 0.0f);
  std::vector<double> sum_q(n, 0.0), sum_g(n, 0.0), bound(n, 0.0);
  EncodeOptions o;
  o.codec = codec;
  o.block_size = block;
  for (int t = 0; t < steps; ++t) {
    auto g = testing::gaussian(n, 100 + static_cast<std::uint64_t>(t), 1.0f + float(t % 3));
    const auto input = testing::as_dtype(g, dtype);
    const auto chunk = testing::encode_or_die(input.data(), dtype, n, residual.data(), o);
    const auto q = testing::decode_or_die(chunk, n);
    std::vector<float> before(residual);
    ASSERT_TRUE(residual_update(chunk, input.data(), dtype, n, residual.data()).is_ok());
    for (std::size_t i = 0; i < n; ++i) {
      const double gi = dtype == DType::kF32 ? g[i]
                        : dtype == DType::kF16 ? fp16_to_float(float_to_fp16(g[i]))
                                               : bf16_to_float(float_to_bf16(g[i]));
      sum_g[i] += gi;
      sum_q[i] += q[i];
      const double x = gi + before[i];
      bound[i] += (std::fabs(x) + std::fabs(double(residual[i]))) * 0x1p-24 * 1.0000001;
    }
  }
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double gap = std::fabs(sum_q[i] + residual[i] - sum_g[i]);
    ASSERT_LE(gap, bound[i] + 1e-30) << codec_name(codec) << "/" << dtype_name(dtype) << " element " << i;
    worst = std::max(worst, gap);
  }
  // The residual carries what was not sent yet: it must stay of the order of the gradients.
  double max_residual = 0;
  for (float e : residual) max_residual = std::max(max_residual, double(std::fabs(e)));
  EXPECT_LT(max_residual, 50.0) << codec_name(codec) << ": error feedback diverged";
}

TEST(ErrorFeedback, TelescopesForTernaryEf) {
  for (DType dtype : testing::kAllDTypes) check_telescoping(Codec::kTernaryEf, dtype, 128, 3000, 40);
  check_telescoping(Codec::kTernaryEf, DType::kF32, 32, 1000, 40);
}

TEST(ErrorFeedback, TelescopesForSignEf) {
  for (DType dtype : testing::kAllDTypes) check_telescoping(Codec::kSignEf, dtype, 128, 3000, 40);
  check_telescoping(Codec::kSignEf, DType::kF32, 4096, 5000, 20);
}

TEST(ErrorFeedback, TimeAverageOfWhatWasSentConvergesToTheGradient) {
  // A constant gradient sent through an EF codec: by telescoping, the average of what was sent is
  // g − e_T/T, so it converges when the residual stays bounded. Measured here: the relative L2
  // error of the average after T steps must fall below 10% by T = 1000 and shrink about as 1/T.
  // (ternary-ef converges slowly on blocks with large outliers: an element can send at most the
  // block's mean magnitude per step, so its residual grows until the mean catches up.)
  const std::size_t n = 1024;
  const auto g = testing::gaussian(n, 5);
  for (Codec codec : {Codec::kTernaryEf, Codec::kSignEf}) {
    std::vector<float> residual(n, 0.0f);
    std::vector<double> sent(n, 0.0);
    EncodeOptions o;
    o.codec = codec;
    auto relative_error = [&](int steps) {
      double err = 0, norm = 0;
      for (std::size_t i = 0; i < n; ++i) {
        err += (sent[i] / steps - g[i]) * (sent[i] / steps - g[i]);
        norm += double(g[i]) * g[i];
      }
      return std::sqrt(err / norm);
    };
    double at_100 = 0;
    for (int t = 1; t <= 1000; ++t) {
      const auto chunk = testing::encode_or_die(g.data(), DType::kF32, n, residual.data(), o);
      const auto q = testing::decode_or_die(chunk, n);
      ASSERT_TRUE(residual_update(chunk, g.data(), DType::kF32, n, residual.data()).is_ok());
      for (std::size_t i = 0; i < n; ++i) sent[i] += q[i];
      if (t == 100) at_100 = relative_error(t);
    }
    const double at_1000 = relative_error(1000);
    EXPECT_LT(at_1000, 0.1) << codec_name(codec);
    EXPECT_LT(at_1000, at_100 / 4) << codec_name(codec) << ": error " << at_100 << " at T=100, " << at_1000 << " at T=1000";
  }
}

TEST(ErrorFeedback, ResidualUpdateRejectsOtherCodecs) {
  const auto g = testing::gaussian(64, 1);
  std::vector<float> residual(64);
  EncodeOptions o;
  const auto chunk = testing::encode_or_die(g.data(), DType::kF32, 64, nullptr, o);
  EXPECT_EQ(residual_update(chunk, g.data(), DType::kF32, 64, residual.data()).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tern::kernels
