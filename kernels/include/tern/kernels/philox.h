// Philox4x32 (Salmon et al., SC'11), the counter-based generator behind terngrad's stochastic
// rounding, with 7 rounds. Usable from host and CUDA device code, so both draw identical numbers.
//
// Element i of a tensor encoded with (seed, stream) uses 32-bit word (i mod 4) of
//   philox4x32_7(counter = {lo(i/4), hi(i/4), lo(stream), hi(stream)}, key = {lo(seed), hi(seed)}).
// Why 7 rounds: it is the fewest with which Philox4x32 passes TestU01's batteries in the paper's
// tests (it calls such generators Crush-resistant); Random123 defaults to 10 as a safety margin
// for simulations. Stochastic rounding only needs independent uniforms, and the generator is most
// of terngrad's CPU encode cost, so tern takes the 30% (docs/codecs.md).
// Its top 24 bits give the uniform u = (w >> 8) · 2^-24 in [0, 1), exactly representable in fp32.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define TERN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TERN_HOST_DEVICE inline
#endif

namespace tern::kernels {

inline constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;
inline constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;

struct PhiloxBlock {
  std::uint32_t v[4];
};

/// Rounds of the generator terngrad draws from (every implementation: scalar, AVX2, AVX-512, CUDA).
inline constexpr int kTernGradPhiloxRounds = 7;

/// Philox4x32 with `Rounds` rounds (Random123's philox4x32_R).
template <int Rounds>
TERN_HOST_DEVICE PhiloxBlock philox4x32(PhiloxBlock ctr, std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < Rounds; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * ctr.v[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * ctr.v[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = PhiloxBlock{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
  }
  return ctr;
}

/// The four words for elements 4·quad .. 4·quad+3 of (seed, stream).
TERN_HOST_DEVICE PhiloxBlock philox_quad(std::uint64_t seed, std::uint64_t stream, std::uint64_t quad) {
  const PhiloxBlock counter{{static_cast<std::uint32_t>(quad), static_cast<std::uint32_t>(quad >> 32),
                             static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
  return philox4x32<kTernGradPhiloxRounds>(counter, static_cast<std::uint32_t>(seed),
                                           static_cast<std::uint32_t>(seed >> 32));
}

/// The word for element `index` of (seed, stream).
TERN_HOST_DEVICE std::uint32_t philox_word(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return philox_quad(seed, stream, index >> 2).v[index & 3];
}

/// Uniform in [0, 1) on the 2^-24 grid from a Philox word (bias bound: see docs/codecs.md).
TERN_HOST_DEVICE float uniform24(std::uint32_t word) {
  return static_cast<float>(word >> 8) * 0x1p-24f;
}

}  // namespace tern::kernels
