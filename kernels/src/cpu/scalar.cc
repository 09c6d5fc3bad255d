// The scalar reference: the executable specification of every codec (docs/codecs.md). Written for
// clarity; the SIMD and CUDA implementations must reproduce its output bit for bit.
#include <cmath>
#include <cstring>

#include "cpu_kernels.h"
#include "tern/kernels/float16.h"
#include "tern/kernels/philox.h"
#include "tern/kernels/wire_format.h"

namespace tern::kernels::cpu {
namespace {

float widen(const void* input, DType dtype, std::size_t i) {
  switch (dtype) {
    case DType::kF32: {
      float v;
      std::memcpy(&v, static_cast<const std::uint8_t*>(input) + 4 * i, 4);
      return v;
    }
    case DType::kF16: {
      std::uint16_t h;
      std::memcpy(&h, static_cast<const std::uint8_t*>(input) + 2 * i, 2);
      return fp16_to_float(h);
    }
    case DType::kBf16: {
      std::uint16_t h;
      std::memcpy(&h, static_cast<const std::uint8_t*>(input) + 2 * i, 2);
      return bf16_to_float(h);
    }
  }
  return 0.0f;
}

// x = widen(input) + residual; without a residual x is widen(input) itself (adding +0.0 would turn
// -0.0 into +0.0 and change the fp32 codec's bytes).
float input_value(const void* input, DType dtype, const float* residual, std::size_t i) {
  const float g = widen(input, dtype, i);
  return residual ? g + residual[i] : g;
}

void tally_nonfinite(NonFiniteTally& tally, std::size_t index) {
  if (tally.count++ == 0) tally.first = index;
}

float abs_value(float v) { return std::fabs(v); }
float square(float v) { return v * v; }

float block_scale(const EncodeJob& job, const float* x, std::size_t m) {
  const float count = static_cast<float>(m);
  if (job.codec == Codec::kTernGrad) {
    float amax = 0.0f;
    for (std::size_t k = 0; k < m; ++k) amax = std::fabs(x[k]) > amax ? std::fabs(x[k]) : amax;
    if (!job.clip) return amax;
    const float sigma = std::sqrt(block_lane_sum(x, m, square) / count);
    const float clip_at = job.clip_sigmas * sigma;
    return clip_at < amax ? clip_at : amax;
  }
  return block_lane_sum(x, m, abs_value) / count;  // ternary-ef and sign-ef: mean |x|
}

void encode_block_codes(const EncodeJob& job, const float* x, std::size_t begin, std::size_t m, float scale) {
  if (job.codec == Codec::kSignEf) {
    for (std::size_t k = 0; k < m; ++k) {
      const std::size_t i = begin + k;
      if (x[k] < 0.0f) job.payload[i >> 3] = static_cast<std::uint8_t>(job.payload[i >> 3] | (1u << (i & 7)));
    }
    return;
  }
  const float threshold = scale * 0.5f;  // ternary-ef's Δ = α/2
  for (std::size_t k = 0; k < m; ++k) {
    const std::size_t i = begin + k;
    const float a = std::fabs(x[k]);
    bool nonzero;
    if (job.codec == Codec::kTernGrad) {
      const float u = uniform24(philox_word(job.seed, job.stream, job.element_offset + i));
      nonzero = u * scale < a;  // P = |x|/s up to the 2^-24 grid and one rounding
    } else {
      nonzero = a > 0.0f && a >= threshold;
    }
    if (nonzero) {
      const unsigned code = x[k] < 0.0f ? kTernaryMinus : kTernaryPlus;
      job.payload[i >> 2] = static_cast<std::uint8_t>(job.payload[i >> 2] | (code << ((i & 3) * 2)));
    }
  }
}

NonFiniteTally encode_block_scaled(const EncodeJob& job) {
  NonFiniteTally tally;
  const unsigned bits = codec_code_bits(job.codec);
  std::memset(job.payload, 0, (job.count * bits + 7) / 8);
  float x[kMaxBlockSize];
  for (std::size_t begin = 0, b = 0; begin < job.count; begin += job.block_size, ++b) {
    const std::size_t m = job.count - begin < job.block_size ? job.count - begin : job.block_size;
    for (std::size_t k = 0; k < m; ++k) {
      x[k] = input_value(job.input, job.dtype, job.residual, begin + k);
      if (!std::isfinite(x[k])) tally_nonfinite(tally, begin + k);
    }
    const float scale = block_scale(job, x, m);
    store_f32(job.scales + 4 * b, scale);
    encode_block_codes(job, x, begin, m, scale);
  }
  return tally;
}

NonFiniteTally encode_cast(const EncodeJob& job) {
  NonFiniteTally tally;
  for (std::size_t i = 0; i < job.count; ++i) {
    const float x = input_value(job.input, job.dtype, job.residual, i);
    bool finite = std::isfinite(x);
    switch (job.codec) {
      case Codec::kFp32: std::memcpy(job.payload + 4 * i, &x, 4); break;
      case Codec::kFp16: {
        const std::uint16_t h = float_to_fp16(x);
        finite = finite && (h & 0x7C00u) != 0x7C00u;
        std::memcpy(job.payload + 2 * i, &h, 2);
        break;
      }
      default: {
        const std::uint16_t h = float_to_bf16(x);
        finite = finite && (h & 0x7F80u) != 0x7F80u;
        std::memcpy(job.payload + 2 * i, &h, 2);
        break;
      }
    }
    if (!finite) tally_nonfinite(tally, i);
  }
  return tally;
}

NonFiniteTally encode(const EncodeJob& job) {
  return codec_is_block_scaled(job.codec) ? encode_block_scaled(job) : encode_cast(job);
}

// Decoded value of element i. Counts invalid codes: ternary 0b10, and non-finite values of the cast
// codecs (encode never produces them, so they can only come from a corrupt or hostile chunk); both
// decode as +0.0f.
float decoded_value(const DecodeJob& job, std::size_t i, DecodeTally& tally) {
  float cast = 0.0f;
  switch (job.codec) {
    case Codec::kFp32: cast = load_f32(job.payload + 4 * i); break;
    case Codec::kFp16: {
      std::uint16_t h;
      std::memcpy(&h, job.payload + 2 * i, 2);
      cast = fp16_to_float(h);
      break;
    }
    case Codec::kBf16: {
      std::uint16_t h;
      std::memcpy(&h, job.payload + 2 * i, 2);
      cast = bf16_to_float(h);
      break;
    }
    case Codec::kSignEf: {
      const float s = load_f32(job.scales + 4 * (i / job.block_size));
      return ((job.payload[i >> 3] >> (i & 7)) & 1u) ? -s : s;
    }
    case Codec::kTernGrad:
    case Codec::kTernaryEf: {
      const unsigned code = (job.payload[i >> 2] >> ((i & 3) * 2)) & 3u;
      const float s = load_f32(job.scales + 4 * (i / job.block_size));
      if (code == kTernaryPlus) return s;
      if (code == kTernaryMinus) return -s;
      if (code == kTernaryInvalid) ++tally.invalid_codes;
      return 0.0f;
    }
  }
  if (std::isfinite(cast)) return cast;
  ++tally.invalid_codes;
  return 0.0f;
}

DecodeTally decode(const DecodeJob& job, void* out, DType out_dtype) {
  DecodeTally tally;
  auto* bytes = static_cast<std::uint8_t*>(out);
  for (std::size_t i = 0; i < job.count; ++i) {
    const float v = decoded_value(job, i, tally);
    if (out_dtype == DType::kF32) {
      std::memcpy(bytes + 4 * i, &v, 4);
      continue;
    }
    const std::uint16_t h = out_dtype == DType::kF16 ? float_to_fp16(v) : float_to_bf16(v);
    const std::uint16_t exp_mask = out_dtype == DType::kF16 ? 0x7C00u : 0x7F80u;
    if ((h & exp_mask) == exp_mask) ++tally.overflows;
    std::memcpy(bytes + 2 * i, &h, 2);
  }
  return tally;
}

DecodeTally decode_accumulate(const DecodeJob& job, float* acc) {
  DecodeTally tally;
  for (std::size_t i = 0; i < job.count; ++i) acc[i] += decoded_value(job, i, tally);
  return tally;
}

DecodeTally residual_update(const DecodeJob& job, const void* input, DType dtype, float* residual) {
  DecodeTally tally;
  for (std::size_t i = 0; i < job.count; ++i) {
    const float x = widen(input, dtype, i) + residual[i];
    residual[i] = x - decoded_value(job, i, tally);
  }
  return tally;
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable table{"scalar", encode, decode, decode_accumulate, residual_update};
  return table;
}

}  // namespace tern::kernels::cpu
