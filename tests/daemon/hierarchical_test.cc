// The pure arithmetic of ternd's hierarchical allreduce (tern/daemon/hierarchical.h): the local sum's
// order and rounding, the mean's single multiplication, and the narrowing's overflow policy (an
// overflow fails, so that every node, host or GPU path, ends the same way).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tern/daemon/hierarchical.h"
#include "tern/kernels/float16.h"

namespace tern::daemon {
namespace {

TEST(Hierarchical, LocalSumAddsInLocalRankOrderWithOneRoundingEach) {
  // 1e8 + 1 - 1e8: in order (1e8 + 1) rounds to 1e8 first, so the sum is 0, not 1.
  const float a[] = {1e8f}, b[] = {1.0f}, c[] = {-1e8f};
  const void* inputs[] = {a, b, c};
  float acc = -7.0f;
  local_sum(inputs, kernels::DType::kF32, 1, &acc);
  EXPECT_EQ(acc, 0.0f);
  const void* reordered[] = {a, c, b};
  local_sum(reordered, kernels::DType::kF32, 1, &acc);
  EXPECT_EQ(acc, 1.0f);
}

TEST(Hierarchical, MeanIsOneMultiplicationByTheRoundedReciprocal) {
  float v[] = {1.0f, 3.0f, -6.0f};
  scale_for_mean(v, 3, collective::ReduceOp::kMean, 3);
  const float inv = 1.0f / 3.0f;
  EXPECT_EQ(v[0], 1.0f * inv);
  EXPECT_EQ(v[1], 3.0f * inv);  // 1.0000000298..., not 1: the product, not a division
  EXPECT_EQ(v[2], -6.0f * inv);
  float w[] = {5.0f};
  scale_for_mean(w, 1, collective::ReduceOp::kSum, 3);
  EXPECT_EQ(w[0], 5.0f);
}

TEST(Hierarchical, NarrowingRoundsToNearestEvenAndFailsOnOverflow) {
  const float in[] = {1.0f, 65504.0f, 70000.0f, -1e6f, 0.1f};
  std::uint16_t half[5];
  const Status s = narrow_from_f32(in, 5, kernels::DType::kF16, half);
  EXPECT_EQ(s.code(), StatusCode::kNonFinite) << s.to_string();
  EXPECT_NE(s.message().find("2 reduced values overflow fp16"), std::string::npos) << s.to_string();
  EXPECT_EQ(half[0], kernels::float_to_fp16(1.0f));
  EXPECT_EQ(half[4], kernels::float_to_fp16(0.1f));
  EXPECT_TRUE(narrow_from_f32(in, 2, kernels::DType::kF16, half).is_ok());  // 65504 is fp16's largest

  const float big[] = {3e38f, std::numeric_limits<float>::max()};
  std::uint16_t bf[2];
  const Status sb = narrow_from_f32(big, 2, kernels::DType::kBf16, bf);
  EXPECT_EQ(sb.code(), StatusCode::kNonFinite) << sb.to_string();  // FLT_MAX rounds up past bf16's largest
  EXPECT_NE(sb.message().find("1 reduced value overflow bf16"), std::string::npos) << sb.to_string();
  float out[2];
  EXPECT_TRUE(narrow_from_f32(big, 2, kernels::DType::kF32, out).is_ok());
  EXPECT_EQ(out[1], std::numeric_limits<float>::max());
}

}  // namespace
}  // namespace tern::daemon
