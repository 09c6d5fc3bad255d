// Encode kernels: block-scaled codecs (terngrad, ternary-ef, sign-ef) and cast codecs (fp32, fp16,
// bf16). Each reproduces cpu/scalar.cc's encode bit for bit; see the comments on each step.
//
// Thread mapping. A lane owns "quads": 4 consecutive elements e0..e0+3 with e0 a multiple of 4.
// A quad is one 16-byte (fp32) or 8-byte (fp16/bf16) vector load, one Philox4x32 call (its 4 words
// are exactly the 4 elements' words when element_offset is a multiple of 4), one ternary code
// byte, or half a sign byte. A warp covers a "tile" of 128 elements (lane l: elements 4l..4l+3).
//
// Block-scaled codecs: one warp per "group" of elements, all in registers or shared memory while
// the scale is computed, so the input is read from DRAM exactly once:
//  - small blocks (B = 32, 64, 128): a group is 2 tiles (256 elements) held in registers; each
//    tile holds 128/B whole scale blocks;
//  - large blocks (B >= 256): a group is one scale block of B/128 tiles, staged in shared memory.
//
// block_lane_sum() order (cpu_kernels.h): lane j sums f(x[k]) for k = j, j+32, j+64, ... in
// increasing k from +0.0f, then lanes fold in halves. Quads hold consecutive elements, so the
// sums transpose through shared memory: after a tile (or block) is stored, lane j reads elements
// j + 32u for increasing u, which is exactly its chain; lane_tree_sum() does the fold.
#include "codec_kernels.cuh"
#include "device_util.cuh"
#include "tern/kernels/philox.h"
#include "tern/kernels/wire_format.h"

namespace tern::kernels::cuda::detail {
namespace {

constexpr unsigned kSmallGroupLog2 = 8;  // 2 tiles of 128 elements
constexpr unsigned kThreadsCast = 256;

/// Block 0 / thread 0 of every encode launch: the header, the zero padding after the codes, and
/// the other tally slot for the next launch.
__device__ void write_header_and_padding(const EncodeParams& p) {
  for (unsigned k = 0; k < 4; ++k) store_u32_any(p.chunk + 4 * k, p.header[k]);
  const std::uint64_t used = 4 * p.scale_count + p.code_bytes;
  for (std::uint64_t o = used; o < p.payload_bytes; ++o) p.chunk[kChunkHeaderBytes + o] = 0;
  *p.next_tally = DeviceTally{};
}

/// x = widen(input) (+ residual when given: one fp32 add, as input_value() in scalar.cc).
template <DType D>
__device__ __forceinline__ void load_x(const EncodeParams& p, std::uint64_t e0, unsigned nv, float x[4]) {
  load_widened_quad<D>(p.input, e0, nv, p.vec_in, x);
  if (p.residual) {
    float r[4];
    load_f32_quad(p.residual, e0, nv, p.vec_in, r);
#pragma unroll
    for (unsigned c = 0; c < 4; ++c)
      if (c < nv) x[c] = __fadd_rn(x[c], r[c]);
  }
}

__device__ __forceinline__ void check_finite(const float x[4], unsigned nv, std::uint64_t e0, LaneFlags& bad) {
#pragma unroll
  for (unsigned c = 0; c < 4; ++c)
    if (c < nv && !finite_f32(x[c])) bad.add(e0 + c);
}

/// f of block_scale(): x*x for terngrad's σ, |x| for the mean of ternary-ef / sign-ef.
__device__ __forceinline__ float sum_term(float v, bool square) { return square ? __fmul_rn(v, v) : fabsf(v); }

/// block_scale() of scalar.cc from the block's max |x|, its lane sum and its element count m.
__device__ __forceinline__ float block_scale(const EncodeParams& p, float amax, float sum, unsigned m) {
  const float count = static_cast<float>(m);
  if (p.codec == Codec::kTernGrad) {
    if (!p.clip) return amax;
    const float sigma = __fsqrt_rn(__fdiv_rn(sum, count));
    const float clip_at = __fmul_rn(p.clip_sigmas, sigma);
    return clip_at < amax ? clip_at : amax;
  }
  return __fdiv_rn(sum, count);
}

__device__ __forceinline__ std::uint32_t philox_pick(const PhiloxBlock& b, unsigned k) {
  return k == 0 ? b.v[0] : k == 1 ? b.v[1] : k == 2 ? b.v[2] : b.v[3];
}

/// Code bits of one quad (elements e0..e0+nv-1, scale s): a ternary byte (element e0+c at bits
/// 2c) or a sign nibble (bit c). Elements past nv give 0 bits.
__device__ __forceinline__ unsigned quad_codes(const EncodeParams& p, const float x[4], unsigned nv, std::uint64_t e0,
                                               float s) {
  unsigned bits = 0;
  if (nv == 0) return 0;
  if (p.codec == Codec::kSignEf) {
#pragma unroll
    for (unsigned c = 0; c < 4; ++c)
      if (c < nv && x[c] < 0.0f) bits |= 1u << c;
    return bits;
  }
  if (p.codec == Codec::kTernGrad) {
    // Element i draws word (element_offset + i) of (seed, stream): word (q+c) & 3 of quad (q+c) >> 2.
    const std::uint64_t q = p.element_offset + e0;
    const PhiloxBlock a = philox_quad(p.seed, p.stream, q >> 2);
    std::uint32_t w[4];
    const unsigned r = static_cast<unsigned>(q & 3);
    if (r == 0) {
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) w[c] = a.v[c];
    } else {  // element_offset not a multiple of 4: the quad straddles two Philox blocks
      const PhiloxBlock b = philox_quad(p.seed, p.stream, (q + 3) >> 2);
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) w[c] = r + c < 4 ? philox_pick(a, r + c) : philox_pick(b, r + c - 4);
    }
#pragma unroll
    for (unsigned c = 0; c < 4; ++c) {
      if (c >= nv) continue;
      const float u = uniform24(w[c]);
      if (__fmul_rn(u, s) < fabsf(x[c])) bits |= (x[c] < 0.0f ? kTernaryMinus : kTernaryPlus) << (2 * c);
    }
    return bits;
  }
  const float threshold = __fmul_rn(s, 0.5f);  // ternary-ef's Δ = α/2
#pragma unroll
  for (unsigned c = 0; c < 4; ++c) {
    if (c >= nv) continue;
    const float a = fabsf(x[c]);
    if (a > 0.0f && a >= threshold) bits |= (x[c] < 0.0f ? kTernaryMinus : kTernaryPlus) << (2 * c);
  }
  return bits;
}

/// Stores block b's scale (first element `first`); a non-finite scale (Σ|x| overflowing fp32 with
/// finite inputs) is tallied like codec.cc's overflowing_scales(). One lane per block calls this.
__device__ __forceinline__ void store_scale(const EncodeParams& p, std::uint8_t* scales, std::uint64_t first,
                                            float s) {
  store_u32_any(scales + 4 * (first >> p.block_log2), __float_as_uint(s));
  if (!finite_f32(s)) {
    atomicAdd(&p.tally->bad_scale_count, 1ull);
    atomicMax(&p.tally->bad_scale_first_inv, ~static_cast<unsigned long long>(first));
  }
}

/// Stores the codes of the tile quad at e0 (e0 = tile start + 4·lane). All lanes must call (sign-ef
/// pairs lanes with a shuffle).
__device__ __forceinline__ void store_quad_codes(const EncodeParams& p, std::uint8_t* codes, std::uint64_t e0,
                                                 unsigned nv, unsigned bits) {
  if (p.codec == Codec::kSignEf) {
    // Lane 2k holds bits 0..3 of byte e0/8, lane 2k+1 bits 4..7 (tile starts are multiples of 128).
    const unsigned high = __shfl_down_sync(kFullMask, bits, 1);
    if ((lane_id() & 1u) == 0 && nv != 0) codes[e0 >> 3] = static_cast<std::uint8_t>(bits | (high << 4));
  } else if (nv != 0) {
    codes[e0 >> 2] = static_cast<std::uint8_t>(bits);
  }
}

/// Per-lane sum of f over the lane's scale block within one 128-element tile, for B = 32, 64 or
/// 128, in block_lane_sum() order. `valid` is the number of tile elements below count.
/// wbuf: this warp's 128 floats of shared memory. All lanes must call.
__device__ float tile_block_sum(float* wbuf, const float x[4], unsigned valid, unsigned block_log2, bool square) {
  const unsigned lane = lane_id();
  __syncwarp();  // the previous tile's readers are done
  reinterpret_cast<float4*>(wbuf)[lane] = make_float4(x[0], x[1], x[2], x[3]);
  __syncwarp();
  // Sum lane j's elements in this tile: k = j + 32u (u = 0..3), tile element k.
  float f[4];
  bool ok[4];
#pragma unroll
  for (unsigned u = 0; u < 4; ++u) {
    const unsigned k = 32 * u + lane;
    ok[u] = k < valid;
    f[u] = sum_term(wbuf[k], square);
  }
  if (block_log2 == 7) {  // one block: one chain of 4
    float a = 0.0f;
#pragma unroll
    for (unsigned u = 0; u < 4; ++u)
      if (ok[u]) a = __fadd_rn(a, f[u]);
    return lane_tree_sum(a);
  }
  if (block_log2 == 6) {  // blocks 0 (u = 0, 1) and 1 (u = 2, 3); lane l's block is l / 16
    float a0 = 0.0f, a1 = 0.0f;
    if (ok[0]) a0 = __fadd_rn(a0, f[0]);
    if (ok[1]) a0 = __fadd_rn(a0, f[1]);
    if (ok[2]) a1 = __fadd_rn(a1, f[2]);
    if (ok[3]) a1 = __fadd_rn(a1, f[3]);
    a0 = lane_tree_sum(a0);
    a1 = lane_tree_sum(a1);
    return lane < 16 ? a0 : a1;
  }
  // B = 32: block u is element 32u + j alone (one term per chain); lane l's block is l / 8.
  float a[4];
#pragma unroll
  for (unsigned u = 0; u < 4; ++u) {
    a[u] = 0.0f;
    if (ok[u]) a[u] = __fadd_rn(a[u], f[u]);
    a[u] = lane_tree_sum(a[u]);
  }
  const unsigned g = lane >> 3;
  return g == 0 ? a[0] : g == 1 ? a[1] : g == 2 ? a[2] : a[3];
}

/// B = 32, 64, 128: a group of 2 tiles in registers.
template <DType D>
__device__ __forceinline__ void encode_small_group(const EncodeParams& p, float* wbuf, std::uint64_t gbase) {
  const unsigned lane = lane_id();
  const unsigned block_log2 = p.block_log2;
  const unsigned block = 1u << block_log2;
  std::uint8_t* const scales = p.chunk + kChunkHeaderBytes;
  std::uint8_t* const codes = scales + 4 * p.scale_count;

  float x[2][4];
  unsigned nv[2];
  std::uint64_t e0[2];
#pragma unroll
  for (unsigned t = 0; t < 2; ++t) {  // both tiles' loads are in flight together
    e0[t] = gbase + 128 * t + 4 * lane;
    nv[t] = quad_valid(e0[t], p.count);
    load_x<D>(p, e0[t], nv[t], x[t]);
  }
  LaneFlags bad;
#pragma unroll
  for (unsigned t = 0; t < 2; ++t) check_finite(x[t], nv[t], e0[t], bad);
  warp_tally(bad, &p.tally->nonfinite_count, &p.tally->nonfinite_first_inv);

  const bool need_sum = p.clip || p.codec != Codec::kTernGrad;
#pragma unroll
  for (unsigned t = 0; t < 2; ++t) {
    const std::uint64_t tile = gbase + 128 * t;
    if (tile >= p.count) break;  // warp-uniform
    // max |x| over the lane's scale block: the lane's quad, then the B/4 lanes of the block.
    float amax = 0.0f;
#pragma unroll
    for (unsigned c = 0; c < 4; ++c) {
      const float a = fabsf(x[t][c]);  // 0 past count
      amax = a > amax ? a : amax;
    }
    for (unsigned offset = block >> 3; offset >= 1; offset >>= 1) {
      const float other = __shfl_xor_sync(kFullMask, amax, offset);
      amax = other > amax ? other : amax;
    }
    float sum = 0.0f;
    if (need_sum) {
      const unsigned valid = p.count - tile >= 128 ? 128u : static_cast<unsigned>(p.count - tile);
      sum = tile_block_sum(wbuf, x[t], valid, block_log2, p.clip);
    }
    const std::uint64_t block_start = (e0[t] >> block_log2) << block_log2;
    const bool block_exists = block_start < p.count;
    const unsigned m = !block_exists ? 1u
                       : p.count - block_start >= block ? block
                                                        : static_cast<unsigned>(p.count - block_start);
    const float s = block_scale(p, amax, sum, m);
    if (block_exists && (lane & ((block >> 2) - 1)) == 0) store_scale(p, scales, block_start, s);
    store_quad_codes(p, codes, e0[t], nv[t], quad_codes(p, x[t], nv[t], e0[t], s));
  }
}

/// B >= 256: one scale block of B/128 tiles, staged in shared memory (wbuf: B floats).
template <DType D>
__device__ __forceinline__ void encode_large_group(const EncodeParams& p, float* wbuf, std::uint64_t gbase) {
  const unsigned lane = lane_id();
  const unsigned block = 1u << p.block_log2;
  const unsigned valid = p.count - gbase >= block ? block : static_cast<unsigned>(p.count - gbase);
  const unsigned ntiles = (valid + 127) / 128;
  float4* const buf4 = reinterpret_cast<float4*>(wbuf);

  LaneFlags bad;
  float amax = 0.0f;
  for (unsigned t0 = 0; t0 < ntiles; t0 += 4) {
    float x[4][4];
    unsigned nv[4];
    std::uint64_t e0[4];
#pragma unroll
    for (unsigned j = 0; j < 4; ++j) {  // 4 tiles' loads in flight
      e0[j] = gbase + 128 * (t0 + j) + 4 * lane;
      nv[j] = t0 + j < ntiles ? quad_valid(e0[j], p.count) : 0u;
      load_x<D>(p, e0[j], nv[j], x[j]);
    }
#pragma unroll
    for (unsigned j = 0; j < 4; ++j) {
      if (t0 + j >= ntiles) break;
      check_finite(x[j], nv[j], e0[j], bad);
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) {
        const float a = fabsf(x[j][c]);
        amax = a > amax ? a : amax;
      }
      buf4[32 * (t0 + j) + lane] = make_float4(x[j][0], x[j][1], x[j][2], x[j][3]);
    }
  }
  warp_tally(bad, &p.tally->nonfinite_count, &p.tally->nonfinite_first_inv);
#pragma unroll
  for (unsigned offset = 16; offset >= 1; offset >>= 1) {
    const float other = __shfl_xor_sync(kFullMask, amax, offset);
    amax = other > amax ? other : amax;
  }
  float sum = 0.0f;
  if (p.clip || p.codec != Codec::kTernGrad) {
    __syncwarp();
    const bool square = p.clip;
    float acc = 0.0f;
    const unsigned rows = (valid + 31) / 32;
    for (unsigned u = 0; u < rows; ++u) {
      const unsigned k = 32 * u + lane;
      if (k < valid) acc = __fadd_rn(acc, sum_term(wbuf[k], square));
    }
    sum = lane_tree_sum(acc);
  }
  const float s = block_scale(p, amax, sum, valid);
  std::uint8_t* const scales = p.chunk + kChunkHeaderBytes;
  std::uint8_t* const codes = scales + 4 * p.scale_count;
  if (lane == 0) store_scale(p, scales, gbase, s);
  for (unsigned t = 0; t < ntiles; ++t) {  // each lane re-reads only its own quads
    const std::uint64_t e0 = gbase + 128 * t + 4 * lane;
    const unsigned nv = quad_valid(e0, p.count);
    const float4 v = buf4[32 * t + lane];
    const float x[4] = {v.x, v.y, v.z, v.w};
    store_quad_codes(p, codes, e0, nv, quad_codes(p, x, nv, e0, s));
  }
}

/// One warp per group: Small = blocks of 32..128 (groups of 256 elements), else one block per
/// group. Dynamic shared memory: (blockDim.x / 32) groups' worth of floats (128 for small blocks,
/// B for large ones). Separate kernels so the small path's register count is its own; the small
/// path is held to 48 registers (5 blocks of 8 warps per SM, no spills on sm_90) for occupancy.
template <DType D, bool Small>
__global__ void __launch_bounds__(256, Small ? 5 : 1) encode_scaled_kernel(const EncodeParams p) {
  extern __shared__ float4 smem[];
  if (blockIdx.x == 0 && threadIdx.x == 0) write_header_and_padding(p);
  const unsigned group_log2 = Small ? kSmallGroupLog2 : p.block_log2;
  const unsigned warp = threadIdx.x >> 5;
  const std::uint64_t group = static_cast<std::uint64_t>(blockIdx.x) * (blockDim.x >> 5) + warp;
  const std::uint64_t gbase = group << group_log2;
  if (gbase >= p.count) return;  // whole warp
  float* const wbuf = reinterpret_cast<float*>(smem) + static_cast<std::size_t>(warp) * (Small ? 128u : 1u << p.block_log2);
  if constexpr (Small)
    encode_small_group<D>(p, wbuf, gbase);
  else
    encode_large_group<D>(p, wbuf, gbase);
}

/// Cast codecs: one quad per thread. Non-finite: x itself, or a narrowed value that became ±Inf
/// (exponent all ones), as encode_cast() in scalar.cc.
template <DType D>
__global__ void __launch_bounds__(kThreadsCast) encode_cast_kernel(const EncodeParams p) {
  if (blockIdx.x == 0 && threadIdx.x == 0) write_header_and_padding(p);
  const std::uint64_t e0 = (static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  const unsigned nv = quad_valid(e0, p.count);
  LaneFlags bad;
  if (nv != 0) {
    float x[4];
    load_x<D>(p, e0, nv, x);
    std::uint8_t* const payload = p.chunk + kChunkHeaderBytes;
    if (p.codec == Codec::kFp32) {
      check_finite(x, nv, e0, bad);
      if (p.vec_out && nv == 4) {
        *reinterpret_cast<float4*>(payload + 4 * e0) = make_float4(x[0], x[1], x[2], x[3]);
      } else {
#pragma unroll
        for (unsigned c = 0; c < 4; ++c)
          if (c < nv) store_u32_any(payload + 4 * (e0 + c), __float_as_uint(x[c]));
      }
    } else {
      const bool fp16 = p.codec == Codec::kFp16;
      const std::uint16_t exp_mask = fp16 ? 0x7C00u : 0x7F80u;
      std::uint16_t h[4];
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) {
        h[c] = fp16 ? float_to_fp16(x[c]) : float_to_bf16(x[c]);
        if (c < nv && (!finite_f32(x[c]) || (h[c] & exp_mask) == exp_mask)) bad.add(e0 + c);
      }
      if (p.vec_out && nv == 4) {
        *reinterpret_cast<uint2*>(payload + 2 * e0) =
            make_uint2(static_cast<unsigned>(h[0]) | (static_cast<unsigned>(h[1]) << 16),
                       static_cast<unsigned>(h[2]) | (static_cast<unsigned>(h[3]) << 16));
      } else {
#pragma unroll
        for (unsigned c = 0; c < 4; ++c)
          if (c < nv) store_u16_any(payload + 2 * (e0 + c), h[c]);
      }
    }
  }
  warp_tally(bad, &p.tally->nonfinite_count, &p.tally->nonfinite_first_inv);
}

template <typename Kernel>
cudaError_t launch(Kernel kernel, unsigned blocks, unsigned threads, std::size_t smem, const EncodeParams& params,
                   cudaStream_t stream) {
  void* args[] = {const_cast<EncodeParams*>(&params)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(blocks), dim3(threads), args, smem, stream);
}

}  // namespace

cudaError_t launch_encode(const EncodeParams& p, DType dtype, cudaStream_t stream) {
  if (!codec_is_block_scaled(p.codec)) {
    const std::uint64_t quads = (p.count + 3) / 4;
    const auto blocks = static_cast<unsigned>(quads == 0 ? 1 : (quads + kThreadsCast - 1) / kThreadsCast);
    switch (dtype) {
      case DType::kF32: return launch(encode_cast_kernel<DType::kF32>, blocks, kThreadsCast, 0, p, stream);
      case DType::kF16: return launch(encode_cast_kernel<DType::kF16>, blocks, kThreadsCast, 0, p, stream);
      case DType::kBf16: return launch(encode_cast_kernel<DType::kBf16>, blocks, kThreadsCast, 0, p, stream);
    }
    return cudaErrorInvalidValue;
  }
  // Warps per block: 8, fewer for large blocks so that shared memory stays <= 32 KiB per block.
  const bool small = p.block_log2 <= 7;
  const unsigned group_log2 = small ? kSmallGroupLog2 : p.block_log2;
  const std::size_t warp_bytes = small ? 128 * sizeof(float) : (std::size_t{4} << p.block_log2);
  unsigned warps = static_cast<unsigned>(32768 / warp_bytes);
  warps = warps > 8 ? 8 : (warps < 1 ? 1 : warps);
  const std::uint64_t groups = (p.count + (std::uint64_t{1} << group_log2) - 1) >> group_log2;
  const auto blocks = static_cast<unsigned>(groups == 0 ? 1 : (groups + warps - 1) / warps);
  const std::size_t smem = warps * warp_bytes;
  if (small) {
    switch (dtype) {
      case DType::kF32: return launch(encode_scaled_kernel<DType::kF32, true>, blocks, 32 * warps, smem, p, stream);
      case DType::kF16: return launch(encode_scaled_kernel<DType::kF16, true>, blocks, 32 * warps, smem, p, stream);
      case DType::kBf16: return launch(encode_scaled_kernel<DType::kBf16, true>, blocks, 32 * warps, smem, p, stream);
    }
  } else {
    switch (dtype) {
      case DType::kF32: return launch(encode_scaled_kernel<DType::kF32, false>, blocks, 32 * warps, smem, p, stream);
      case DType::kF16: return launch(encode_scaled_kernel<DType::kF16, false>, blocks, 32 * warps, smem, p, stream);
      case DType::kBf16: return launch(encode_scaled_kernel<DType::kBf16, false>, blocks, 32 * warps, smem, p, stream);
    }
  }
  return cudaErrorInvalidValue;
}

}  // namespace tern::kernels::cuda::detail
