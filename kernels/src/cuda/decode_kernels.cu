// Decode kernels: decode (to fp32/fp16/bf16), decode_accumulate and residual_update, one quad
// (4 consecutive elements) per thread. They reproduce decoded_value() and the loops of
// cpu/scalar.cc bit for bit, and do on the device the chunk checks parse_chunk() makes after the
// header (scales finite with the sign bit clear, unused code bits and padding zero), so the host
// never reads more than the 16-byte header.
#include "codec_kernels.cuh"
#include "device_util.cuh"
#include "tern/kernels/wire_format.h"

namespace tern::kernels::cuda::detail {
namespace {

constexpr unsigned kThreads = 256;

/// Block 0 / thread 0: parse_chunk()'s tail checks (unused bits of the last code byte, padding),
/// and the other tally slot for the next launch.
__device__ void check_tail(const DecodeParams& p) {
  const std::uint8_t* codes = p.chunk + kChunkHeaderBytes + 4 * p.scale_count;
  const std::uint64_t used_bits = p.count * codec_code_bits_device(p.codec);
  if (used_bits % 8 != 0 && (codes[p.code_bytes - 1] >> (used_bits % 8)) != 0) p.tally->bad_unused_bits = 1;
  const std::uint64_t end = p.payload_bytes - 4 * p.scale_count;
  for (std::uint64_t o = p.code_bytes; o < end; ++o)
    if (codes[o] != 0) p.tally->bad_padding = 1;
  *p.next_tally = DeviceTally{};
}

/// decoded_value() of scalar.cc for the quad at e0 (nv valid elements, v = 0 past nv). Counts
/// invalid codes (ternary 0b10, and NaN/Inf values of cast codecs, which decode as +0.0f);
/// flags the scale of a block whose first element this quad holds.
__device__ __forceinline__ void decode_quad(const DecodeParams& p, std::uint64_t e0, unsigned nv, float v[4],
                                            LaneFlags& invalid, LaneFlags& bad_scale) {
  const std::uint8_t* const payload = p.chunk + kChunkHeaderBytes;
  switch (p.codec) {
    case Codec::kFp32:
    case Codec::kFp16:
    case Codec::kBf16: {
      if (p.codec == Codec::kFp32) {
        if (p.vec_chunk && nv == 4) {
          const float4 f = __ldg(reinterpret_cast<const float4*>(payload + 4 * e0));
          v[0] = f.x;
          v[1] = f.y;
          v[2] = f.z;
          v[3] = f.w;
        } else {
#pragma unroll
          for (unsigned c = 0; c < 4; ++c)
            v[c] = c < nv ? __uint_as_float(load_u32_any(payload + 4 * (e0 + c))) : 0.0f;
        }
      } else {
        std::uint16_t h[4];
        if (p.vec_chunk && nv == 4) {
          const uint2 w = __ldg(reinterpret_cast<const uint2*>(payload + 2 * e0));
          h[0] = static_cast<std::uint16_t>(w.x);
          h[1] = static_cast<std::uint16_t>(w.x >> 16);
          h[2] = static_cast<std::uint16_t>(w.y);
          h[3] = static_cast<std::uint16_t>(w.y >> 16);
        } else {
#pragma unroll
          for (unsigned c = 0; c < 4; ++c) h[c] = c < nv ? load_u16_any(payload + 2 * (e0 + c)) : std::uint16_t{0};
        }
        const bool fp16 = p.codec == Codec::kFp16;
#pragma unroll
        for (unsigned c = 0; c < 4; ++c) v[c] = fp16 ? fp16_to_float(h[c]) : bf16_to_float(h[c]);
      }
      // Encode never produces NaN/Inf: such a value is an invalid code and decodes as +0.0f.
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) {
        if (c < nv && !finite_f32(v[c])) {
          invalid.add(e0 + c);
          v[c] = 0.0f;
        }
      }
      return;
    }
    default: break;
  }
  // Block-scaled: all 4 elements share block e0 / B (B is a multiple of 4).
  const std::uint64_t b = e0 >> p.block_log2;
  const std::uint32_t scale_bits = load_u32_any(payload + 4 * b);
  if ((e0 & ((std::uint64_t{1} << p.block_log2) - 1)) == 0 &&
      ((scale_bits & 0x7F800000u) == 0x7F800000u || (scale_bits & 0x80000000u) != 0))
    bad_scale.add(b);
  const float s = __uint_as_float(scale_bits);
  const std::uint8_t* const codes = payload + 4 * p.scale_count;
  if (p.codec == Codec::kSignEf) {
    const unsigned bits = static_cast<unsigned>(__ldg(codes + (e0 >> 3))) >> (e0 & 7);
#pragma unroll
    for (unsigned c = 0; c < 4; ++c) v[c] = c < nv ? (((bits >> c) & 1u) ? -s : s) : 0.0f;
    return;
  }
  const unsigned byte = __ldg(codes + (e0 >> 2));
#pragma unroll
  for (unsigned c = 0; c < 4; ++c) {
    const unsigned code = (byte >> (2 * c)) & 3u;
    v[c] = 0.0f;
    if (c >= nv) continue;
    if (code == kTernaryPlus) v[c] = s;
    if (code == kTernaryMinus) v[c] = -s;
    if (code == kTernaryInvalid) invalid.add(e0 + c);
  }
}

template <DecodeOp Op>
__global__ void __launch_bounds__(kThreads) decode_kernel(const DecodeParams p) {
  if (blockIdx.x == 0 && threadIdx.x == 0) check_tail(p);
  const std::uint64_t e0 = (static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  const unsigned nv = quad_valid(e0, p.count);
  LaneFlags invalid, bad_scale, overflow;
  if (nv != 0) {
    float v[4];
    decode_quad(p, e0, nv, v, invalid, bad_scale);
    if constexpr (Op == DecodeOp::kToF32) {
      store_f32_quad(static_cast<float*>(p.out), e0, nv, p.vec, v);
    } else if constexpr (Op == DecodeOp::kToF16 || Op == DecodeOp::kToBf16) {
      constexpr std::uint16_t exp_mask = Op == DecodeOp::kToF16 ? 0x7C00u : 0x7F80u;
      std::uint16_t h[4];
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) {
        h[c] = Op == DecodeOp::kToF16 ? float_to_fp16(v[c]) : float_to_bf16(v[c]);
        if (c < nv && (h[c] & exp_mask) == exp_mask) overflow.add(e0 + c);
      }
      store_u16_quad(static_cast<std::uint16_t*>(p.out), e0, nv, p.vec, h);
    } else if constexpr (Op == DecodeOp::kAccumulate) {
      float* const acc = static_cast<float*>(p.out);
      float a[4];
      load_f32_quad<false>(acc, e0, nv, p.vec, a);
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) a[c] = __fadd_rn(a[c], v[c]);  // zeros too: -0 + +0 = +0
      store_f32_quad(acc, e0, nv, p.vec, a);
    } else {
      constexpr DType in_dtype = Op == DecodeOp::kResidualF32   ? DType::kF32
                                 : Op == DecodeOp::kResidualF16 ? DType::kF16
                                                                : DType::kBf16;
      float* const residual = static_cast<float*>(p.out);
      float g[4], r[4];
      load_widened_quad<in_dtype>(p.input, e0, nv, p.vec, g);
      load_f32_quad<false>(residual, e0, nv, p.vec, r);
#pragma unroll
      for (unsigned c = 0; c < 4; ++c) r[c] = __fsub_rn(__fadd_rn(g[c], r[c]), v[c]);
      store_f32_quad(residual, e0, nv, p.vec, r);
    }
  }
  warp_tally(invalid, &p.tally->invalid_codes, nullptr);
  warp_tally(overflow, &p.tally->overflows, nullptr);
  warp_tally(bad_scale, &p.tally->corrupt_scales, &p.tally->corrupt_scale_first_inv);
}

template <DecodeOp Op>
cudaError_t launch(const DecodeParams& params, cudaStream_t stream) {
  const std::uint64_t quads = (params.count + 3) / 4;
  const auto blocks = static_cast<unsigned>(quads == 0 ? 1 : (quads + kThreads - 1) / kThreads);
  void* args[] = {const_cast<DecodeParams*>(&params)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(decode_kernel<Op>), dim3(blocks), dim3(kThreads), args, 0,
                          stream);
}

}  // namespace

cudaError_t launch_decode(const DecodeParams& params, DecodeOp op, cudaStream_t stream) {
  switch (op) {
    case DecodeOp::kToF32: return launch<DecodeOp::kToF32>(params, stream);
    case DecodeOp::kToF16: return launch<DecodeOp::kToF16>(params, stream);
    case DecodeOp::kToBf16: return launch<DecodeOp::kToBf16>(params, stream);
    case DecodeOp::kAccumulate: return launch<DecodeOp::kAccumulate>(params, stream);
    case DecodeOp::kResidualF32: return launch<DecodeOp::kResidualF32>(params, stream);
    case DecodeOp::kResidualF16: return launch<DecodeOp::kResidualF16>(params, stream);
    case DecodeOp::kResidualBf16: return launch<DecodeOp::kResidualBf16>(params, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attributes{};
  return cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(decode_kernel<DecodeOp::kAccumulate>));
}

}  // namespace tern::kernels::cuda::detail
