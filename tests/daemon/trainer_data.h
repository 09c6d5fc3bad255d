// Deterministic trainer inputs shared by the test trainer process and the tests' reference.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "tern/kernels/codec.h"
#include "tern/kernels/float16.h"

namespace tern::daemon::test {

/// Element i of trainer `rank`'s buffer in iteration `iter`: a hash mapped to [-1, 1).
inline float trainer_value(std::uint64_t seed, int rank, int iter, std::size_t i) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (static_cast<std::uint64_t>(rank) << 40) ^
                    (static_cast<std::uint64_t>(iter) << 20) ^ i;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<float>(static_cast<double>(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

inline std::vector<std::uint8_t> trainer_input(std::uint64_t seed, int rank, int iter, std::size_t count,
                                               kernels::DType dtype) {
  std::vector<std::uint8_t> out(count * kernels::dtype_size(dtype));
  for (std::size_t i = 0; i < count; ++i) {
    const float v = trainer_value(seed, rank, iter, i);
    if (dtype == kernels::DType::kF32) {
      std::memcpy(out.data() + 4 * i, &v, 4);
    } else {
      const std::uint16_t h = dtype == kernels::DType::kF16 ? kernels::float_to_fp16(v) : kernels::float_to_bf16(v);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

}  // namespace tern::daemon::test
