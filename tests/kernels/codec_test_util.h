// Helpers shared by the codec tests: seeded inputs in every dtype, and encode/decode wrappers that
// fail the test on error.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "tern/kernels/codec.h"
#include "tern/kernels/float16.h"

namespace tern::kernels::testing {

inline constexpr Codec kAllCodecs[] = {Codec::kFp32, Codec::kFp16, Codec::kBf16,
                                       Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf};
inline constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBf16};

/// Gaussian fp32 values with occasional exact zeros and negative zeros (edge cases of the codecs).
inline std::vector<float> gaussian(std::size_t n, std::uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = dist(rng);
    if (i % 97 == 5) v[i] = 0.0f;
    if (i % 89 == 7) v[i] = -0.0f;
  }
  return v;
}

/// `values` stored as `dtype` (rounded to nearest even), as raw bytes.
inline std::vector<std::uint8_t> as_dtype(const std::vector<float>& values, DType dtype) {
  std::vector<std::uint8_t> out(values.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(out.data() + 4 * i, &values[i], 4);
    } else {
      const std::uint16_t h = dtype == DType::kF16 ? float_to_fp16(values[i]) : float_to_bf16(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

inline std::vector<std::uint8_t> encode_or_die(const void* input, DType dtype, std::size_t n, const float* residual,
                                               const EncodeOptions& options) {
  auto size = encoded_size(options.codec, options.block_size, n);
  EXPECT_TRUE(size.is_ok()) << size.status().to_string();
  std::vector<std::uint8_t> chunk(size.is_ok() ? *size : 0);
  const Status s = encode(input, dtype, n, residual, options, chunk);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return chunk;
}

inline std::vector<float> decode_or_die(const std::vector<std::uint8_t>& chunk, std::size_t n) {
  std::vector<float> out(n);
  const Status s = decode(chunk, out.data(), DType::kF32, n);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

inline std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace tern::kernels::testing
