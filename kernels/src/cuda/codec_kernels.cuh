// Internal: the interface between the host side of the CUDA codecs (cuda_codec.cu: validation,
// workspaces, statuses) and the kernels (encode_kernels.cu, decode_kernels.cu). Kernels trust these
// parameters: every size, offset and alignment flag is computed and checked on the host.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "tern/kernels/codec.h"

namespace tern::kernels::cuda::detail {

/// What a kernel found, in device memory (a workspace holds two slots, see Workspace::Impl).
/// All fields start at zero; kernels only add (atomicAdd) or take maxima (atomicMax), except the
/// chunk tail flags, which one thread sets.
struct DeviceTally {
  unsigned long long nonfinite_count;      // encode: non-finite x or cast overflows
  unsigned long long nonfinite_first_inv;  // encode: max over ~index, i.e. ~(first index)
  unsigned long long bad_scale_count;      // encode: blocks whose scale is not finite (Σ|x| overflow)
  unsigned long long bad_scale_first_inv;  // encode: ~(first element of the first such block)
  unsigned long long invalid_codes;        // decoders: ternary code 0b10, or NaN/Inf in a cast chunk
  unsigned long long overflows;            // decoders: values that became Inf/NaN when narrowed
  unsigned long long corrupt_scales;           // decoders: scales that are negative or not finite
  unsigned long long corrupt_scale_first_inv;  // decoders: ~(first such scale's index)
  unsigned long long bad_unused_bits;      // decoders: non-zero bits after the last code
  unsigned long long bad_padding;          // decoders: non-zero padding bytes
};

struct EncodeParams {
  const void* input;         // count elements of the launch's dtype
  const float* residual;     // null: x = widen(input)
  std::uint64_t count;       // <= kMaxChunkElements
  std::uint8_t* chunk;       // the whole chunk: header, scales, codes, padding (any alignment)
  std::uint64_t scale_count;
  std::uint64_t code_bytes;
  std::uint64_t payload_bytes;
  std::uint32_t header[4];   // the 16 header bytes as little-endian words
  std::uint64_t seed;
  std::uint64_t stream;
  std::uint64_t element_offset;
  float clip_sigmas;
  std::uint32_t block_log2;  // 5..12 for block-scaled codecs
  Codec codec;
  bool clip;
  bool vec_in;   // input 16-byte (fp32) / 8-byte (fp16, bf16) aligned and residual (if any) 16-byte aligned
  bool vec_out;  // cast codecs: payload 16-byte (fp32) / 8-byte (fp16, bf16) aligned
  DeviceTally* tally;       // this launch's slot (zero on entry)
  DeviceTally* next_tally;  // the other slot: zeroed by this launch for the next one
};

/// What a decoder writes, and for residual updates the input dtype.
enum class DecodeOp : int {
  kToF32 = 0,
  kToF16 = 1,
  kToBf16 = 2,
  kAccumulate = 3,
  kResidualF32 = 4,
  kResidualF16 = 5,
  kResidualBf16 = 6,
};

struct DecodeParams {
  const std::uint8_t* chunk;  // whole chunk, header validated on the host (any alignment)
  std::uint64_t count;        // >= 1
  std::uint64_t scale_count;
  std::uint64_t code_bytes;
  std::uint64_t payload_bytes;
  std::uint32_t block_log2;  // 5..12 for block-scaled codecs, 0 otherwise
  Codec codec;
  bool vec_chunk;  // cast codecs: payload 16-byte (fp32) / 8-byte (fp16, bf16) aligned
  bool vec;        // out/acc/residual 16-byte aligned (8 for fp16/bf16 output), input 16/8
  void* out;          // decode: output tensor; accumulate: acc; residual ops: residual
  const void* input;  // residual ops: the encoded input
  DeviceTally* tally;
  DeviceTally* next_tally;
};

/// Enqueue one kernel; the return value is the launch's own error (cudaLaunchKernel).
cudaError_t launch_encode(const EncodeParams& params, DType dtype, cudaStream_t stream);
cudaError_t launch_decode(const DecodeParams& params, DecodeOp op, cudaStream_t stream);
/// cudaSuccess when the current device can run this build's kernels.
cudaError_t probe_kernel_image();

}  // namespace tern::kernels::cuda::detail
