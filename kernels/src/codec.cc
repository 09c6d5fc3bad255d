// Public codec entry points: argument validation, chunk headers, and dispatch to the active CPU
// kernel table. Kernels themselves never see unvalidated sizes.
#include "tern/kernels/codec.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/cpu_kernels.h"
#include "decode_status.h"
#include "tern/kernels/float16.h"
#include "tern/kernels/wire_format.h"

namespace tern::kernels {
namespace {

constexpr std::string_view kCodecNames[kCodecCount] = {"fp32", "fp16", "bf16", "terngrad", "ternary-ef", "sign-ef"};
constexpr std::string_view kDTypeNames[3] = {"fp32", "fp16", "bf16"};

const cpu::KernelTable* table_for(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar: return &cpu::scalar_kernels();
    case CpuIsa::kAvx2: return cpu::cpu_has_avx2() ? cpu::avx2_kernels() : nullptr;
    case CpuIsa::kAvx512: return cpu::cpu_has_avx512() ? cpu::avx512_kernels() : nullptr;
  }
  return nullptr;
}

CpuIsa initial_isa() {
  if (const char* forced = std::getenv("TERN_CPU_ISA")) {
    for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512})
      if (cpu_isa_name(isa) == forced && table_for(isa)) return isa;
  }
  const auto isas = supported_cpu_isas();
  return isas.back();
}

struct ActiveIsa {
  std::atomic<CpuIsa> isa{initial_isa()};
};

ActiveIsa& active() {
  static ActiveIsa instance;
  return instance;
}

const cpu::KernelTable& kernels() { return *table_for(active().isa.load(std::memory_order_relaxed)); }

bool valid_dtype(DType dtype) { return static_cast<unsigned>(dtype) < 3; }

std::string nonfinite_message(const cpu::NonFiniteTally& tally, Codec codec) {
  std::string msg = std::to_string(tally.count) + " non-finite value" + (tally.count == 1 ? "" : "s") +
                    " (NaN/Inf in the input or residual, a block scale overflowing fp32";
  if (codec == Codec::kFp16 || codec == Codec::kBf16) msg += ", or overflow of " + std::string(codec_name(codec));
  msg += "), first at element " + std::to_string(tally.first) + "; nothing was encoded";
  return msg;
}

// Blocks whose scale is not finite, reported by the index of their first element.
cpu::NonFiniteTally overflowing_scales(const std::uint8_t* scales, std::size_t count, std::uint32_t block_size) {
  cpu::NonFiniteTally tally;
  for (std::size_t b = 0; b < count; ++b) {
    if (!std::isfinite(cpu::load_f32(scales + 4 * b)) && tally.count++ == 0) tally.first = b * block_size;
  }
  return tally;
}

Status decode_status(const cpu::DecodeTally& tally, DType out_dtype) {
  return decode_tally_status(tally.invalid_codes, tally.overflows, out_dtype);
}

Result<cpu::DecodeJob> prepare_decode(std::span<const std::uint8_t> chunk, std::size_t expected_count,
                                      const void* out) {
  TERN_ASSIGN_OR_RETURN(ChunkView view, parse_chunk(chunk));
  if (view.header.count != expected_count)
    return invalid_argument("chunk holds " + std::to_string(view.header.count) + " elements, the buffer " +
                            std::to_string(expected_count));
  if (expected_count != 0 && out == nullptr) return invalid_argument("null output buffer");
  return cpu::DecodeJob{view.header.codec, view.header.block_size, view.header.count, view.scales, view.codes};
}

}  // namespace

std::string_view codec_name(Codec codec) noexcept {
  const auto i = static_cast<unsigned>(codec);
  return i < kCodecCount ? kCodecNames[i] : "unknown";
}

Result<Codec> parse_codec(std::string_view name) {
  for (int i = 0; i < kCodecCount; ++i)
    if (kCodecNames[i] == name) return static_cast<Codec>(i);
  return invalid_argument("unknown codec '" + std::string(name) +
                          "' (expected fp32, fp16, bf16, terngrad, ternary-ef or sign-ef)");
}

std::string_view dtype_name(DType dtype) noexcept {
  return valid_dtype(dtype) ? kDTypeNames[static_cast<unsigned>(dtype)] : "unknown";
}

Result<DType> parse_dtype(std::string_view name) {
  for (unsigned i = 0; i < 3; ++i)
    if (kDTypeNames[i] == name) return static_cast<DType>(i);
  return invalid_argument("unknown dtype '" + std::string(name) + "' (expected fp32, fp16 or bf16)");
}

std::size_t dtype_size(DType dtype) noexcept { return dtype == DType::kF32 ? 4 : 2; }

bool codec_is_block_scaled(Codec codec) noexcept {
  return codec == Codec::kTernGrad || codec == Codec::kTernaryEf || codec == Codec::kSignEf;
}

bool codec_uses_error_feedback(Codec codec) noexcept {
  return codec == Codec::kTernaryEf || codec == Codec::kSignEf;
}

unsigned codec_code_bits(Codec codec) noexcept {
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

Status validate(const EncodeOptions& options) {
  TERN_CHECK(chunk_layout(options.codec, options.block_size, 0));
  if (options.clip) {
    if (options.codec != Codec::kTernGrad)
      return invalid_argument("clipping applies to terngrad only, not " + std::string(codec_name(options.codec)));
    if (!std::isfinite(options.clip_sigmas) || options.clip_sigmas <= 0.0f)
      return invalid_argument("clip factor " + std::to_string(options.clip_sigmas) + " must be finite and positive");
  }
  return Status::ok();
}

Result<std::size_t> encoded_size(Codec codec, std::uint32_t block_size, std::size_t count) {
  TERN_ASSIGN_OR_RETURN(ChunkLayout layout, chunk_layout(codec, block_size, count));
  return layout.total_bytes();
}

Status encode(const void* input, DType dtype, std::size_t count, const float* residual,
              const EncodeOptions& options, std::span<std::uint8_t> out, EncodeReport* report) {
  if (report) *report = EncodeReport{};
  TERN_CHECK(validate(options));
  if (!valid_dtype(dtype)) return invalid_argument("unknown input dtype " + std::to_string(static_cast<int>(dtype)));
  if (residual && !codec_uses_error_feedback(options.codec))
    return invalid_argument("codec " + std::string(codec_name(options.codec)) +
                            " takes no residual (error feedback is for ternary-ef and sign-ef)");
  if (count != 0 && input == nullptr) return invalid_argument("null input with a non-zero count");
  TERN_ASSIGN_OR_RETURN(ChunkLayout layout, chunk_layout(options.codec, options.block_size, count));
  if (out.size() < layout.total_bytes())
    return invalid_argument("output buffer of " + std::to_string(out.size()) + " bytes is smaller than the " +
                            std::to_string(layout.total_bytes()) + "-byte chunk");

  const bool scaled = codec_is_block_scaled(options.codec);
  const ChunkHeader header{options.codec, scaled ? options.block_size : 0, options.clip,
                           static_cast<std::uint32_t>(count), static_cast<std::uint32_t>(layout.payload_bytes)};
  std::uint8_t* chunk = out.data();
  write_chunk_header(header, chunk);
  cpu::EncodeJob job;
  job.input = input;
  job.dtype = dtype;
  job.residual = residual;
  job.count = count;
  job.codec = options.codec;
  job.block_size = options.block_size;
  job.clip = options.clip;
  job.clip_sigmas = options.clip_sigmas;
  job.seed = options.seed;
  job.stream = options.stream;
  job.element_offset = options.element_offset;
  job.scales = chunk + kChunkHeaderBytes;
  job.payload = job.scales + 4 * layout.scale_count;
  cpu::NonFiniteTally tally = count ? kernels().encode(job) : cpu::NonFiniteTally{};
  const std::size_t used = 4 * layout.scale_count + layout.code_bytes;
  std::memset(job.scales + used, 0, layout.payload_bytes - used);

  // Finite inputs can still give an infinite block scale: mean|x| of values near FLT_MAX overflows
  // in the block sum. Such a chunk would be rejected by every decoder, so it is not produced.
  if (!tally.count) tally = overflowing_scales(job.scales, layout.scale_count, options.block_size);
  if (tally.count) {
    if (report) {
      report->nonfinite_count = tally.count;
      report->first_nonfinite = tally.first;
    }
    return non_finite(nonfinite_message(tally, options.codec));
  }
  if (report) report->bytes = layout.total_bytes();
  return Status::ok();
}

Status decode(std::span<const std::uint8_t> chunk, void* out, DType out_dtype, std::size_t out_count) {
  if (!valid_dtype(out_dtype)) return invalid_argument("unknown output dtype");
  TERN_ASSIGN_OR_RETURN(cpu::DecodeJob job, prepare_decode(chunk, out_count, out));
  if (job.count == 0) return Status::ok();
  return decode_status(kernels().decode(job, out, out_dtype), out_dtype);
}

Status decode_accumulate(std::span<const std::uint8_t> chunk, float* acc, std::size_t acc_count) {
  TERN_ASSIGN_OR_RETURN(cpu::DecodeJob job, prepare_decode(chunk, acc_count, acc));
  if (job.count == 0) return Status::ok();
  return decode_status(kernels().decode_accumulate(job, acc), DType::kF32);
}

Status residual_update(std::span<const std::uint8_t> chunk, const void* input, DType dtype, std::size_t count,
                       float* residual) {
  if (!valid_dtype(dtype)) return invalid_argument("unknown input dtype");
  TERN_ASSIGN_OR_RETURN(cpu::DecodeJob job, prepare_decode(chunk, count, residual));
  if (!codec_uses_error_feedback(job.codec))
    return invalid_argument("residual_update applies to ternary-ef and sign-ef, not " +
                            std::string(codec_name(job.codec)));
  if (count != 0 && input == nullptr) return invalid_argument("null input with a non-zero count");
  if (job.count == 0) return Status::ok();
  return decode_status(kernels().residual_update(job, input, dtype, residual), DType::kF32);
}

void widen_to_f32(const void* input, DType dtype, std::size_t count, float* out) noexcept {
  if (dtype == DType::kF32) {
    if (count) std::memmove(out, input, count * 4);
    return;
  }
  const auto* bytes = static_cast<const std::uint8_t*>(input);
  for (std::size_t i = 0; i < count; ++i) {
    std::uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    out[i] = dtype == DType::kF16 ? fp16_to_float(h) : bf16_to_float(h);
  }
}

std::string_view cpu_isa_name(CpuIsa isa) noexcept {
  switch (isa) {
    case CpuIsa::kScalar: return "scalar";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvx512: return "avx512";
  }
  return "unknown";
}

std::vector<CpuIsa> supported_cpu_isas() {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512})
    if (table_for(isa)) isas.push_back(isa);
  return isas;
}

CpuIsa active_cpu_isa() noexcept { return active().isa.load(std::memory_order_relaxed); }

Status set_cpu_isa(CpuIsa isa) {
  if (!table_for(isa))
    return unavailable("CPU implementation " + std::string(cpu_isa_name(isa)) +
                       " is not built in or not supported by this CPU");
  active().isa.store(isa, std::memory_order_relaxed);
  return Status::ok();
}

}  // namespace tern::kernels
