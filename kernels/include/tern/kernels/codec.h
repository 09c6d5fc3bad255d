// The gradient codec library: turns fp32/fp16/bf16 tensors into packed wire chunks and back.
//
// Every function here is a pure function of its arguments: the same inputs, options and seed give
// the same bytes on every CPU implementation (scalar, AVX2, AVX-512) and on the GPU (cuda_codec.h),
// for any thread count and chunking (see EncodeOptions::element_offset). The exact arithmetic is
// specified in docs/codecs.md and the byte layout in docs/wire-format.md.
//
// Thread safety: all functions are reentrant; concurrent calls on disjoint buffers are safe.
// set_cpu_isa() switches the implementation process-wide (atomically) and is meant for tests and
// benchmarks. Nothing blocks, allocates per element, or logs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tern/common/status.h"

namespace tern::kernels {

/// How values travel on the wire. The numeric values are part of the wire format.
enum class Codec : std::uint8_t {
  kFp32 = 0,       ///< pass-through, 32 bits/element
  kFp16 = 1,       ///< IEEE half, round-to-nearest-even, 16 bits/element
  kBf16 = 2,       ///< bfloat16, round-to-nearest-even, 16 bits/element
  kTernGrad = 3,   ///< stochastic ternary {-s,0,+s}, s = block max|x| (or c·σ when clipping); unbiased
  kTernaryEf = 4,  ///< deterministic threshold ternary, α = mean|x|, Δ = α/2; use with error feedback
  kSignEf = 5,     ///< 1-bit sign with scale mean|x|; use with error feedback
};
inline constexpr int kCodecCount = 6;

/// Element types of tensors handed to the codecs. fp16/bf16 are widened exactly to fp32 on input and
/// narrowed with round-to-nearest-even on output.
enum class DType : std::uint8_t { kF32 = 0, kF16 = 1, kBf16 = 2 };

std::string_view codec_name(Codec codec) noexcept;  ///< "fp32", "fp16", "bf16", "terngrad", "ternary-ef", "sign-ef"
Result<Codec> parse_codec(std::string_view name);   ///< inverse of codec_name
std::string_view dtype_name(DType dtype) noexcept;  ///< "fp32", "fp16", "bf16"
Result<DType> parse_dtype(std::string_view name);   ///< inverse of dtype_name
std::size_t dtype_size(DType dtype) noexcept;       ///< bytes per element

/// True for terngrad, ternary-ef and sign-ef: block-scaled codecs with a scale per block.
bool codec_is_block_scaled(Codec codec) noexcept;
/// True for ternary-ef and sign-ef: biased codecs meant to be used with a residual.
bool codec_uses_error_feedback(Codec codec) noexcept;
/// Bits per element of the code section (32, 16, 2 or 1), scales not included.
unsigned codec_code_bits(Codec codec) noexcept;

/// Default elements per scale block for block-scaled codecs. Chosen from the measured
/// variance-vs-bits table in docs/codecs.md.
inline constexpr std::uint32_t kDefaultBlockSize = 128;
inline constexpr std::uint32_t kMinBlockSize = 32;
inline constexpr std::uint32_t kMaxBlockSize = 4096;
/// TernGrad's clipping threshold in standard deviations when clipping is on.
inline constexpr float kDefaultClipSigmas = 2.5f;
/// Largest element count of one chunk (the header stores it in 32 bits).
inline constexpr std::size_t kMaxChunkElements = 0xFFFFFFFFu;

struct EncodeOptions {
  Codec codec = Codec::kTernGrad;
  /// Elements per scale block: a power of two in [32, 4096]. Ignored by the cast codecs.
  std::uint32_t block_size = kDefaultBlockSize;
  /// terngrad only: clip at clip_sigmas·σ (σ = root mean square of the block). Lowers variance,
  /// adds bias. Off by default.
  bool clip = false;
  float clip_sigmas = kDefaultClipSigmas;
  /// Philox4x32-7 key and stream for terngrad's stochastic rounding. Element i of this call draws
  /// its uniform from counter (element_offset + i) of (seed, stream): encoding a tensor in pieces
  /// whose starts are multiples of block_size, each with its own element_offset, gives exactly
  /// the bytes of encoding it whole (codes and scales).
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
  std::uint64_t element_offset = 0;
};

/// Checks options on their own (block size, clip factor). Encode calls it too.
Status validate(const EncodeOptions& options);

/// Size in bytes of a chunk holding `count` elements, header included.
/// Errors: invalid block size for a block-scaled codec; count > kMaxChunkElements.
Result<std::size_t> encoded_size(Codec codec, std::uint32_t block_size, std::size_t count);

/// What encode() saw. On a kNonFinite error it still says how many and where.
struct EncodeReport {
  std::size_t bytes = 0;                        ///< chunk bytes written (0 on error)
  std::size_t nonfinite_count = 0;              ///< NaN/Inf inputs (after adding the residual), or cast overflows
  std::size_t first_nonfinite = SIZE_MAX;       ///< index of the first one
};

/// Encodes `count` elements of `input` (dtype `dtype`) into one chunk at the start of `out`.
///
/// residual: for error-feedback codecs, the fp32 residual e of the same length, or null for none;
///   the codec encodes x = widen(input) + e. encode() never writes it: call residual_update() with
///   the produced chunk once the chunk is known to be used. Must be null for other codecs.
/// out: at least encoded_size() bytes; any alignment.
/// To re-encode a reduced shard, pass the fp32 accumulator as input with DType::kF32.
///
/// Non-finite policy: if any x is NaN or ±Inf (or a cast to fp16/bf16 overflows), nothing useful is
/// produced: the call returns kNonFinite with the count and first index in the message and in
/// `report`; `out` holds unspecified bytes and must not be sent. The caller decides (skip the step,
/// rescale, fail the op). Errors: kInvalidArgument for bad options/sizes, kNonFinite as above.
Status encode(const void* input, DType dtype, std::size_t count, const float* residual,
              const EncodeOptions& options, std::span<std::uint8_t> out, EncodeReport* report = nullptr);

/// Decodes a whole chunk into `out` (`out_count` elements of `out_dtype`; out_count must equal the
/// chunk's element count). Errors: kCorruptData for a malformed chunk (see parse_chunk) or invalid
/// codes, kInvalidArgument for a count mismatch, kNonFinite when a value overflows `out_dtype`.
/// On error `out` holds unspecified values.
Status decode(std::span<const std::uint8_t> chunk, void* out, DType out_dtype, std::size_t out_count);

/// acc[i] += decoded[i] in fp32 for every element (zeros included). Same errors as decode(); on
/// error `acc` holds unspecified values.
Status decode_accumulate(std::span<const std::uint8_t> chunk, float* acc, std::size_t acc_count);

/// Error feedback: residual[i] = (widen(input[i]) + residual[i]) - decoded[i], with `chunk` the
/// output of encode() for the same input and residual. Only for error-feedback codecs.
Status residual_update(std::span<const std::uint8_t> chunk, const void* input, DType dtype,
                       std::size_t count, float* residual);

/// out[i] = widen(input[i]) (exact), for the reduced values a rank contributes without encoding.
void widen_to_f32(const void* input, DType dtype, std::size_t count, float* out) noexcept;

/// CPU implementations, chosen at run time from cpuid (and TERN_CPU_ISA=scalar|avx2|avx512 if set).
enum class CpuIsa : std::uint8_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
std::string_view cpu_isa_name(CpuIsa isa) noexcept;
/// Implementations this build contains and this CPU can run, scalar first.
std::vector<CpuIsa> supported_cpu_isas();
CpuIsa active_cpu_isa() noexcept;
/// Selects the implementation for all later calls. kUnavailable when the CPU can't run it.
Status set_cpu_isa(CpuIsa isa);

}  // namespace tern::kernels
