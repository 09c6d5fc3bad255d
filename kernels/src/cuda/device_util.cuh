// Internal device helpers shared by the encode and decode kernels: element loads (vectorized when
// aligned), unaligned-safe byte access to chunks, warp-aggregated tallies.
//
// Exactness: every float operation the reference performs is written with an explicit
// round-to-nearest intrinsic (__fadd_rn, __fmul_rn, __fdiv_rn, __fsqrt_rn), which the compiler
// never contracts into FMA; the build also passes -fmad=false -prec-div=true -prec-sqrt=true
// -ftz=false. fp16/bf16 conversions and Philox are the shared host/device functions of
// float16.h / philox.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "codec_kernels.cuh"
#include "tern/kernels/float16.h"

namespace tern::kernels::cuda::detail {

inline constexpr unsigned kFullMask = 0xFFFFFFFFu;

__device__ __forceinline__ unsigned lane_id() { return threadIdx.x & 31u; }

/// std::isfinite for fp32, by the bits.
__device__ __forceinline__ bool finite_f32(float x) { return (__float_as_uint(x) & 0x7F800000u) != 0x7F800000u; }

/// codec_code_bits() of codec.h, for device code.
__device__ __forceinline__ unsigned codec_code_bits_device(Codec codec) {
  switch (codec) {
    case Codec::kFp32: return 32;
    case Codec::kFp16:
    case Codec::kBf16: return 16;
    case Codec::kTernGrad:
    case Codec::kTernaryEf: return 2;
    case Codec::kSignEf: return 1;
  }
  return 0;
}

/// Number of valid elements in the quad starting at e0 (0..4).
__device__ __forceinline__ unsigned quad_valid(std::uint64_t e0, std::uint64_t count) {
  return e0 >= count ? 0u : (count - e0 >= 4 ? 4u : static_cast<unsigned>(count - e0));
}

// ---- unaligned-safe little-endian access to chunk bytes --------------------------------------

__device__ __forceinline__ std::uint32_t load_u32_any(const std::uint8_t* p) {
  if ((reinterpret_cast<std::uintptr_t>(p) & 3u) == 0) return __ldg(reinterpret_cast<const unsigned int*>(p));
  return static_cast<std::uint32_t>(__ldg(p)) | (static_cast<std::uint32_t>(__ldg(p + 1)) << 8) |
         (static_cast<std::uint32_t>(__ldg(p + 2)) << 16) | (static_cast<std::uint32_t>(__ldg(p + 3)) << 24);
}

__device__ __forceinline__ std::uint16_t load_u16_any(const std::uint8_t* p) {
  if ((reinterpret_cast<std::uintptr_t>(p) & 1u) == 0) return __ldg(reinterpret_cast<const unsigned short*>(p));
  return static_cast<std::uint16_t>(__ldg(p) | (__ldg(p + 1) << 8));
}

__device__ __forceinline__ void store_u32_any(std::uint8_t* p, std::uint32_t v) {
  if ((reinterpret_cast<std::uintptr_t>(p) & 3u) == 0) {
    *reinterpret_cast<unsigned int*>(p) = v;
  } else {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
    p[2] = static_cast<std::uint8_t>(v >> 16);
    p[3] = static_cast<std::uint8_t>(v >> 24);
  }
}

__device__ __forceinline__ void store_u16_any(std::uint8_t* p, std::uint16_t v) {
  if ((reinterpret_cast<std::uintptr_t>(p) & 1u) == 0) {
    *reinterpret_cast<unsigned short*>(p) = v;
  } else {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
  }
}

// ---- tensor element access (tensors are element-aligned; vec means quad-aligned) -------------

/// Elements e0 .. e0+nv-1 of an fp32 tensor into x[0..nv-1]; x[c] = 0 for c >= nv.
/// ReadOnly: the kernel never writes the tensor (loads may use the non-coherent cache); false
/// for tensors the kernel updates in place (accumulator, residual).
template <bool ReadOnly = true>
__device__ __forceinline__ void load_f32_quad(const float* p, std::uint64_t e0, unsigned nv, bool vec, float x[4]) {
  if (vec && nv == 4) {
    const float4 v = ReadOnly ? __ldg(reinterpret_cast<const float4*>(p + e0)) : *reinterpret_cast<const float4*>(p + e0);
    x[0] = v.x;
    x[1] = v.y;
    x[2] = v.z;
    x[3] = v.w;
  } else {
#pragma unroll
    for (unsigned c = 0; c < 4; ++c) x[c] = c < nv ? (ReadOnly ? __ldg(p + e0 + c) : p[e0 + c]) : 0.0f;
  }
}

/// The 16-bit words of elements e0 .. e0+nv-1 (0 past nv).
__device__ __forceinline__ void load_u16_quad(const std::uint16_t* p, std::uint64_t e0, unsigned nv, bool vec,
                                              std::uint16_t h[4]) {
  if (vec && nv == 4) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(p + e0));
    h[0] = static_cast<std::uint16_t>(v.x);
    h[1] = static_cast<std::uint16_t>(v.x >> 16);
    h[2] = static_cast<std::uint16_t>(v.y);
    h[3] = static_cast<std::uint16_t>(v.y >> 16);
  } else {
#pragma unroll
    for (unsigned c = 0; c < 4; ++c)
      h[c] = c < nv ? static_cast<std::uint16_t>(__ldg(reinterpret_cast<const unsigned short*>(p) + e0 + c)) : 0;
  }
}

/// widen(input) for elements e0 .. e0+nv-1 of a tensor of dtype D; 0 past nv.
template <DType D>
__device__ __forceinline__ void load_widened_quad(const void* input, std::uint64_t e0, unsigned nv, bool vec,
                                                  float x[4]) {
  if constexpr (D == DType::kF32) {
    load_f32_quad(static_cast<const float*>(input), e0, nv, vec, x);
  } else {
    std::uint16_t h[4];
    load_u16_quad(static_cast<const std::uint16_t*>(input), e0, nv, vec, h);
#pragma unroll
    for (unsigned c = 0; c < 4; ++c) x[c] = D == DType::kF16 ? fp16_to_float(h[c]) : bf16_to_float(h[c]);
  }
}

/// Stores x[0..nv-1] to elements e0.. of an fp32 tensor.
__device__ __forceinline__ void store_f32_quad(float* p, std::uint64_t e0, unsigned nv, bool vec, const float x[4]) {
  if (vec && nv == 4) {
    *reinterpret_cast<float4*>(p + e0) = make_float4(x[0], x[1], x[2], x[3]);
  } else {
#pragma unroll
    for (unsigned c = 0; c < 4; ++c)
      if (c < nv) p[e0 + c] = x[c];
  }
}

/// Stores h[0..nv-1] to elements e0.. of a 16-bit tensor.
__device__ __forceinline__ void store_u16_quad(std::uint16_t* p, std::uint64_t e0, unsigned nv, bool vec,
                                               const std::uint16_t h[4]) {
  if (vec && nv == 4) {
    *reinterpret_cast<uint2*>(p + e0) = make_uint2(static_cast<unsigned>(h[0]) | (static_cast<unsigned>(h[1]) << 16),
                                                   static_cast<unsigned>(h[2]) | (static_cast<unsigned>(h[3]) << 16));
  } else {
#pragma unroll
    for (unsigned c = 0; c < 4; ++c)
      if (c < nv) p[e0 + c] = h[c];
  }
}

// ---- tallies -------------------------------------------------------------------------------

/// Per-lane count of flagged elements and the smallest flagged index.
struct LaneFlags {
  unsigned count = 0;
  unsigned long long first = ~0ull;

  __device__ __forceinline__ void add(unsigned long long index) {
    if (index < first) first = index;
    ++count;
  }
};

/// Adds the warp's counts to *count and folds ~(smallest index) into *first_inv (if non-null).
/// Must be called by all 32 lanes of the warp (it shuffles); one atomic per warp, none when the
/// warp flagged nothing (the common case costs one ballot).
__device__ __forceinline__ void warp_tally(const LaneFlags& flags, unsigned long long* count,
                                           unsigned long long* first_inv) {
  if (__ballot_sync(kFullMask, flags.count != 0) == 0) return;
  unsigned long long total = flags.count;
  unsigned long long inv = flags.count ? ~flags.first : 0ull;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    total += __shfl_xor_sync(kFullMask, total, offset);
    const unsigned long long other = __shfl_xor_sync(kFullMask, inv, offset);
    inv = other > inv ? other : inv;
  }
  if (lane_id() == 0) {
    atomicAdd(count, total);
    if (first_inv) atomicMax(first_inv, inv);
  }
}

/// The reduction tail of block_lane_sum() (cpu_kernels.h): lane j += lane j+16, +8, +4, +2, +1.
/// Lane 0 ends with the block sum; the result is broadcast to all lanes.
__device__ __forceinline__ float lane_tree_sum(float v) {
#pragma unroll
  for (unsigned step = 16; step >= 1; step >>= 1) v = __fadd_rn(v, __shfl_down_sync(kFullMask, v, step));
  return __shfl_sync(kFullMask, v, 0);
}

}  // namespace tern::kernels::cuda::detail
