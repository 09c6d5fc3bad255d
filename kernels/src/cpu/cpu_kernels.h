// Internal: the table of CPU codec kernels one instruction set implements. The public functions in
// codec.h validate arguments and then call the active table; kernels trust their arguments.
//
// Every table must produce exactly the bytes and floats of the scalar reference (scalar.cc), which
// is the executable form of docs/codecs.md. In particular:
//  - x = widen(input) + residual (one fp32 add, no FMA anywhere);
//  - block sums (mean|x|, Σx²) use the 32-lane tree of block_lane_sum() below;
//  - decode_accumulate adds the decoded value to every element, zeros included (+0.0 turns an
//    accumulator's -0.0 into +0.0, so skipping zeros would not be bit-identical).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tern/kernels/codec.h"

namespace tern::kernels::cpu {

struct EncodeJob {
  const void* input = nullptr;
  DType dtype = DType::kF32;
  const float* residual = nullptr;  // null: none
  std::size_t count = 0;
  Codec codec = Codec::kTernGrad;
  std::uint32_t block_size = kDefaultBlockSize;  // power of two in [32, 4096]
  bool clip = false;
  float clip_sigmas = kDefaultClipSigmas;
  std::uint64_t seed = 0, stream = 0, element_offset = 0;
  std::uint8_t* scales = nullptr;   // ceil(count/block) little-endian floats, any alignment
  std::uint8_t* payload = nullptr;  // ceil(count·bits/8) bytes, unused high bits of the last byte zero
};

struct NonFiniteTally {
  std::size_t count = 0;
  std::size_t first = SIZE_MAX;
};

struct DecodeJob {
  Codec codec = Codec::kFp32;
  std::uint32_t block_size = 0;
  std::size_t count = 0;
  const std::uint8_t* scales = nullptr;  // validated: finite, sign bit clear
  const std::uint8_t* payload = nullptr;
};

struct DecodeTally {
  std::size_t invalid_codes = 0;  // ternary code 0b10, or a NaN/Inf value of a cast codec (decoded as +0.0f)
  std::size_t overflows = 0;      // values that became ±Inf when narrowed to the output dtype
};

struct KernelTable {
  const char* name;
  NonFiniteTally (*encode)(const EncodeJob& job);
  DecodeTally (*decode)(const DecodeJob& job, void* out, DType out_dtype);
  DecodeTally (*decode_accumulate)(const DecodeJob& job, float* acc);
  /// residual[i] = (widen(input[i]) + residual[i]) - decoded[i]
  DecodeTally (*residual_update)(const DecodeJob& job, const void* input, DType dtype, float* residual);
};

const KernelTable& scalar_kernels();
/// Null when the build lacks that implementation; callers also check the CPU supports it.
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();

inline float load_f32(const std::uint8_t* p) {
  float f;
  std::memcpy(&f, p, sizeof f);
  return f;
}
inline void store_f32(std::uint8_t* p, float f) { std::memcpy(p, &f, sizeof f); }

/// The reduction order every implementation uses for block sums: 32 lanes, lane j adds f(x[k])
/// for k ≡ j (mod 32) in increasing k starting from +0.0f, then lanes fold in halves
/// (lane j += lane j+16, then j+8, j+4, j+2, j+1). A warp's shuffle-down reduction and two
/// 16-wide AVX-512 registers both follow it naturally.
template <typename F>
inline float block_lane_sum(const float* x, std::size_t m, F f) {
  float lanes[32] = {};
  for (std::size_t k = 0; k < m; ++k) lanes[k & 31] += f(x[k]);
  for (unsigned step = 16; step >= 1; step >>= 1)
    for (unsigned j = 0; j < step; ++j) lanes[j] += lanes[j + step];
  return lanes[0];
}

}  // namespace tern::kernels::cpu
