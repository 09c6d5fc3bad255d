#include "tern/kernels/float16.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tern::kernels {
namespace {

TEST(Float16, EveryHalfRoundTripsExactly) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const auto half = static_cast<std::uint16_t>(h);
    const float f = fp16_to_float(half);
    if (std::isnan(f)) {
      EXPECT_TRUE(((float_to_fp16(f) & 0x7C00u) == 0x7C00u) && (float_to_fp16(f) & 0x3FFu)) << h;
      continue;
    }
    EXPECT_EQ(float_to_fp16(f), half) << "half 0x" << std::hex << h;
  }
}

TEST(Float16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_fp16(65519.996f), 0x7BFF);
  EXPECT_EQ(float_to_fp16(65520.0f), 0x7C00);  // ties away from the largest finite go to Inf (even)
  EXPECT_EQ(float_to_fp16(-1e30f), 0xFC00);
  EXPECT_EQ(float_to_fp16(1.0f + 0x1p-11f), 0x3C00);             // tie -> even (down)
  EXPECT_EQ(float_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);         // tie -> even (up)
  EXPECT_EQ(float_to_fp16(0x1p-25f), 0x0000);                    // half of the smallest subnormal: tie to 0
  EXPECT_EQ(float_to_fp16(0x1p-25f * 1.0000001f), 0x0001);
  EXPECT_EQ(float_to_fp16(3 * 0x1p-25f), 0x0002);                // 1.5 ulp -> 2 (even)
  EXPECT_EQ(float_to_fp16(0x1p-14f - 0x1p-26f), 0x0400);        // rounds up into the normals
}

TEST(Bfloat16, RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(bits_float(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(float_to_bf16(bits_float(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(float_to_bf16(bits_float(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX rounds to Inf
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_float(static_cast<std::uint16_t>(h));
    if (!std::isnan(f)) { EXPECT_EQ(float_to_bf16(f), h); }
  }
}

}  // namespace
}  // namespace tern::kernels
