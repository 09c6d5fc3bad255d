// Bit-exact fp32 <-> fp16/bf16 conversions usable from host and device code. Narrowing rounds to
// nearest, ties to even (as F16C's vcvtps2ph with imm 0 and CUDA's __float2half_rn /
// __float2bfloat16_rn do); overflow gives ±Inf; NaN stays NaN (quiet). Widening is exact.
#pragma once

#include <cstdint>
#include <cstring>

#include "tern/kernels/philox.h"  // TERN_HOST_DEVICE

namespace tern::kernels {

TERN_HOST_DEVICE std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

TERN_HOST_DEVICE float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

TERN_HOST_DEVICE float bf16_to_float(std::uint16_t h) { return bits_float(static_cast<std::uint32_t>(h) << 16); }

TERN_HOST_DEVICE std::uint16_t float_to_bf16(float f) {
  std::uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

TERN_HOST_DEVICE float fp16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return bits_float(sign | 0x7F800000u | (mant << 13));  // Inf / NaN
  if (exp == 0) {
    if (mant == 0) return bits_float(sign);
    // Subnormal: value = mant · 2^-24, exact in fp32.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return bits_float(sign | float_bits(v));
  }
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

TERN_HOST_DEVICE std::uint16_t float_to_fp16(float f) {
  const std::uint32_t u = float_bits(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));  // NaN
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to Inf
  if (abs >= 0x38800000u) {                                                    // normal half (>= 2^-14)
    const std::uint32_t rounded = abs + 0xFFFu + ((abs >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  if (abs < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 itself ties to even zero)
  // Subnormal half: shift the implicit-one mantissa right, rounding to nearest even.
  const std::uint32_t exp = abs >> 23;
  const std::uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126u - exp;  // 14..24 for exp in [102, 112]
  const std::uint32_t half_mant = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  const std::uint32_t halfway = 1u << (shift - 1u);
  const std::uint32_t up = (rem > halfway || (rem == halfway && (half_mant & 1u))) ? 1u : 0u;
  return static_cast<std::uint16_t>(sign | (half_mant + up));
}

}  // namespace tern::kernels
