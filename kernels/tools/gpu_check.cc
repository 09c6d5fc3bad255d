// tern-gpu-check: checks the CUDA codecs against the CPU scalar reference, bit for bit, and
// measures their bandwidth. No GoogleTest: it builds wherever cmake, a C++ compiler and nvcc do.
//
//   tern-gpu-check [--check] [--bench] [--quick] [--sizes MIB,...] [--json FILE]
//
//   --check  sweep codecs x dtypes x sizes x block sizes x clip x residual x element offsets x
//            buffer alignments; compare every chunk byte, every decoded value (fp32/fp16/bf16),
//            decode_accumulate and residual_update results, non-finite reports, corrupt-chunk and
//            bad-argument statuses (code and message) with the CPU scalar implementation. Prints
//            the first differing byte/element with context for each failure.
//   --bench  encode and decode_accumulate times (median of 20 after 3 warm-ups, CUDA events) for
//            1..256 MiB of fp32 elements, bandwidth, and the ratio to a cudaMemcpyAsync
//            device-to-device copy of the same input measured in the same run.
//   --quick  fewer sizes (for a smoke run).
//   --sizes  bench sizes in MiB of fp32 elements (default 1,4,16,64,256).
//   --json   also write the results as JSON.
//   (no mode: --check)
//
// Exit status: 0 everything passed; 1 a check failed; 3 the bench ran but missed the acceptance
// target (terngrad fp32 256 MiB encode >= 70% of the copy bandwidth); 2 usage or CUDA error;
// 77 no usable GPU (the reason is printed).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tern/kernels/codec.h"
#include "tern/kernels/cuda_codec.h"
#include "tern/kernels/float16.h"
#include "tern/kernels/wire_format.h"

namespace {

using namespace tern;
using namespace tern::kernels;
namespace gpu = tern::kernels::cuda;

constexpr int kExitFail = 1, kExitError = 2, kExitSlow = 3, kExitNoGpu = 77;

std::atomic<bool>* g_gate = nullptr;  // the bench's stream gate, released on any exit

[[noreturn]] void die(const std::string& what) {
  if (g_gate) g_gate->store(true);
  std::fprintf(stderr, "tern-gpu-check: %s\n", what.c_str());
  std::exit(kExitError);
}

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

/// A device allocation with a fixed capacity; data() may be offset to test misaligned buffers.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    cuda_ok(cudaMalloc(&ptr_, bytes ? bytes : 1), "cudaMalloc");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  std::uint8_t* at(std::size_t offset = 0) const { return static_cast<std::uint8_t*>(ptr_) + offset; }
  std::size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

void upload(void* dst, const void* src, std::size_t bytes) {
  if (bytes) cuda_ok(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}
std::vector<std::uint8_t> download(const void* src, std::size_t bytes) {
  std::vector<std::uint8_t> out(bytes);
  if (bytes) cuda_ok(cudaMemcpy(out.data(), src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
  return out;
}

// ---- inputs ---------------------------------------------------------------------------------------

/// Gaussian values with the codecs' edge cases: exact zeros, -0.0, subnormals, repeated block
/// maxima, outliers (for clipping), all-zero stretches (scale 0), values on ternary-ef's threshold.
std::vector<float> make_values(std::size_t n, std::uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = dist(rng);
    switch (rng() % 61) {
      case 0: v[i] = 0.0f; break;
      case 1: v[i] = -0.0f; break;
      case 2: v[i] = 1e-40f * (rng() % 2 ? 1.0f : -1.0f); break;  // subnormal
      case 3: v[i] = 50.0f * stddev; break;                       // outlier
      case 4: v[i] = -3.0f * stddev; break;                       // repeated magnitude
      case 5: v[i] = 3.0f * stddev; break;
      default: break;
    }
  }
  // A zero stretch (covers whole 32- and 64-blocks when long enough).
  if (n > 700)
    for (std::size_t i = 576; i < 704; ++i) v[i] = (i % 3 == 0) ? -0.0f : 0.0f;
  return v;
}

std::vector<std::uint8_t> as_dtype(const std::vector<float>& values, DType dtype) {
  std::vector<std::uint8_t> out(values.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(out.data() + 4 * i, &values[i], 4);
    } else {
      const std::uint16_t h = dtype == DType::kF16 ? float_to_fp16(values[i]) : float_to_bf16(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

std::vector<std::uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<std::uint8_t> out(4 * v.size());
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// ---- reporting ------------------------------------------------------------------------------------

struct Tally {
  std::size_t passed = 0, failed = 0;
  int details_left = 25;
  std::string first_failure;
};

std::string hex_context(const std::vector<std::uint8_t>& bytes, std::size_t at) {
  std::string s;
  const std::size_t begin = at >= 8 ? at - 8 : 0, end = std::min(bytes.size(), at + 9);
  char buf[8];
  for (std::size_t i = begin; i < end; ++i) {
    std::snprintf(buf, sizeof buf, i == at ? "[%02x]" : " %02x ", bytes[i]);
    s += buf;
  }
  return s;
}

/// Where byte `at` of a chunk lies, in words.
std::string chunk_position(const std::vector<std::uint8_t>& chunk, std::size_t at) {
  if (at < kChunkHeaderBytes) return "header byte " + std::to_string(at);
  const auto view = parse_chunk(chunk);
  if (!view.is_ok()) return "payload byte " + std::to_string(at - kChunkHeaderBytes) + " (reference chunk unparsable)";
  const std::size_t scales_end = kChunkHeaderBytes + 4 * view->layout.scale_count;
  if (at < scales_end) return "scale " + std::to_string((at - kChunkHeaderBytes) / 4);
  const std::size_t codes_end = scales_end + view->layout.code_bytes;
  if (at < codes_end) {
    const unsigned bits = codec_code_bits(view->header.codec);
    const std::size_t first = (at - scales_end) * 8 / bits;
    return "codes byte " + std::to_string(at - scales_end) + " (elements " + std::to_string(first) + ".." +
           std::to_string(first + std::max(1u, 8 / bits) - 1) + ")";
  }
  return "padding byte " + std::to_string(at - codes_end);
}

/// Compares GPU bytes with the CPU's; on a difference prints the first one with context.
/// `element_bytes` > 0 describes a tensor (prints the element index and both values as floats
/// for 4-byte elements); 0 means a chunk.
bool same_bytes(Tally& t, const std::string& what, const std::vector<std::uint8_t>& cpu,
                const std::vector<std::uint8_t>& gpu, std::size_t element_bytes,
                const std::function<std::string(std::size_t)>& context = {}) {
  std::size_t at = 0;
  while (at < cpu.size() && at < gpu.size() && cpu[at] == gpu[at]) ++at;
  if (at == cpu.size() && cpu.size() == gpu.size()) {
    ++t.passed;
    return true;
  }
  ++t.failed;
  std::string msg = "FAIL " + what + ": ";
  if (cpu.size() != gpu.size()) {
    msg += "sizes differ (cpu " + std::to_string(cpu.size()) + ", gpu " + std::to_string(gpu.size()) + ")";
  } else {
    std::size_t differing = 0;
    for (std::size_t i = at; i < cpu.size(); ++i) differing += cpu[i] != gpu[i];
    msg += std::to_string(differing) + " of " + std::to_string(cpu.size()) + " bytes differ; first at byte " +
           std::to_string(at);
    if (element_bytes == 0) {
      msg += " = " + chunk_position(cpu, at);
    } else {
      const std::size_t e = at / element_bytes;
      msg += " = element " + std::to_string(e);
      if (element_bytes == 4) {
        float a, b;
        std::memcpy(&a, cpu.data() + 4 * e, 4);
        std::memcpy(&b, gpu.data() + 4 * e, 4);
        char buf[96];
        std::snprintf(buf, sizeof buf, " (cpu %.9g, gpu %.9g)", static_cast<double>(a), static_cast<double>(b));
        msg += buf;
      }
    }
    msg += "\n    cpu:" + hex_context(cpu, at) + "\n    gpu:" + hex_context(gpu, at);
    if (context) msg += "\n    " + context(at);
  }
  if (t.first_failure.empty()) t.first_failure = msg;
  if (t.details_left-- > 0) std::printf("%s\n", msg.c_str());
  return false;
}

bool same_status(Tally& t, const std::string& what, const Status& cpu, const Status& gpu) {
  if (cpu.to_string() == gpu.to_string()) {
    ++t.passed;
    return true;
  }
  ++t.failed;
  const std::string msg = "FAIL " + what + ": status differs\n    cpu: " + cpu.to_string() + "\n    gpu: " + gpu.to_string();
  if (t.first_failure.empty()) t.first_failure = msg;
  if (t.details_left-- > 0) std::printf("%s\n", msg.c_str());
  return false;
}

bool expect(Tally& t, const std::string& what, bool ok, const std::string& detail = "") {
  if (ok) {
    ++t.passed;
    return true;
  }
  ++t.failed;
  const std::string msg = "FAIL " + what + (detail.empty() ? "" : ": " + detail);
  if (t.first_failure.empty()) t.first_failure = msg;
  if (t.details_left-- > 0) std::printf("%s\n", msg.c_str());
  return false;
}

// ---- the check sweep ------------------------------------------------------------------------------

struct Case {
  Codec codec = Codec::kFp32;
  DType dtype = DType::kF32;
  std::size_t n = 0;
  std::uint32_t block = kDefaultBlockSize;
  bool clip = false;
  float clip_sigmas = kDefaultClipSigmas;
  bool residual = false;
  std::uint64_t element_offset = 0;
  std::size_t input_shift = 0;  // elements: 1 makes the input non-16-byte-aligned (scalar path)
  std::size_t chunk_shift = 0;  // bytes: 1..3 make the chunk unaligned
  std::uint64_t data_seed = 1;

  std::string name() const {
    std::string s = std::string(codec_name(codec)) + " in=" + std::string(dtype_name(dtype)) +
                    " n=" + std::to_string(n);
    if (codec_is_block_scaled(codec)) s += " B=" + std::to_string(block);
    if (clip) s += " clip=" + std::to_string(clip_sigmas);
    if (residual) s += " residual";
    if (element_offset) s += " offset=" + std::to_string(element_offset);
    if (input_shift) s += " input+" + std::to_string(input_shift) + "el";
    if (chunk_shift) s += " chunk+" + std::to_string(chunk_shift) + "B";
    s += " data=" + std::to_string(data_seed);
    return s;
  }
};

class Checker {
 public:
  explicit Checker(std::size_t max_n) : max_n_(max_n) {
    auto ws = gpu::Workspace::create();
    if (!ws.is_ok()) die("Workspace::create: " + ws.status().to_string());
    ws_ = std::make_unique<gpu::Workspace>(std::move(ws).value());
    const std::size_t bytes = 4 * max_n + 64;
    input_ = std::make_unique<DeviceBuffer>(bytes);
    residual_ = std::make_unique<DeviceBuffer>(bytes);
    chunk_ = std::make_unique<DeviceBuffer>(bytes + kChunkHeaderBytes + 4 * (max_n / 32 + 1));
    out_ = std::make_unique<DeviceBuffer>(bytes);
    // A blocking stream: the synchronous cudaMemcpy/cudaMemset calls (legacy default stream) are
    // ordered before the kernels enqueued after them.
    cuda_ok(cudaStreamCreate(&stream_), "cudaStreamCreate");
    int pageable = 0;
    cuda_ok(cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, 0), "cudaDeviceGetAttribute");
    pageable_ = pageable != 0;
  }
  ~Checker() { (void)cudaStreamDestroy(stream_); }
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  Tally tally;

  EncodeOptions options(const Case& c) const {
    EncodeOptions o;
    o.codec = c.codec;
    o.block_size = c.block;
    o.clip = c.clip;
    o.clip_sigmas = c.clip_sigmas;
    o.seed = 0x243F6A8885A308D3ull ^ c.data_seed;
    o.stream = 0x13198A2E03707344ull + c.data_seed;
    o.element_offset = c.element_offset;
    return o;
  }

  /// Encode on both, compare chunks; then every decoder on the CPU chunk.
  void run(const Case& c, const std::vector<float>& values, const std::vector<float>& residual_values) {
    const std::string name = c.name();
    const auto input = as_dtype(values, c.dtype);
    const EncodeOptions o = options(c);
    const float* cpu_residual = c.residual ? residual_values.data() : nullptr;

    const std::size_t size = *encoded_size(c.codec, c.block, c.n);
    std::vector<std::uint8_t> cpu_chunk(size);
    EncodeReport cpu_report;
    const Status cpu_status = encode(input.data(), c.dtype, c.n, cpu_residual, o, cpu_chunk, &cpu_report);

    const std::size_t esize = dtype_size(c.dtype);
    std::uint8_t* d_input = input_->at(c.input_shift * esize);
    upload(d_input, input.data(), input.size());
    float* d_residual = nullptr;
    if (c.residual) {
      d_residual = reinterpret_cast<float*>(residual_->at(4 * c.input_shift));
      upload(d_residual, residual_values.data(), 4 * c.n);
    }
    std::uint8_t* d_chunk = chunk_->at(c.chunk_shift);
    cuda_ok(cudaMemset(chunk_->at(), 0xA5, size + 8), "cudaMemset");  // no stale bytes from the last case
    EncodeReport gpu_report;
    const Status gpu_status = gpu::encode(*ws_, d_input, c.dtype, c.n, d_residual, o, d_chunk, size, stream_, &gpu_report);
    if (!same_status(tally, "encode status " + name, cpu_status, gpu_status)) return;
    expect(tally, "encode report " + name,
           cpu_report.bytes == gpu_report.bytes && cpu_report.nonfinite_count == gpu_report.nonfinite_count &&
               cpu_report.first_nonfinite == gpu_report.first_nonfinite,
           "cpu {" + std::to_string(cpu_report.bytes) + ", " + std::to_string(cpu_report.nonfinite_count) + ", " +
               std::to_string(cpu_report.first_nonfinite) + "} gpu {" + std::to_string(gpu_report.bytes) + ", " +
               std::to_string(gpu_report.nonfinite_count) + ", " + std::to_string(gpu_report.first_nonfinite) + "}");
    if (!cpu_status.is_ok()) return;  // chunk bytes unspecified on error
    const auto gpu_chunk = download(d_chunk, size);
    const bool scaled = codec_is_block_scaled(c.codec);
    same_bytes(tally, "chunk " + name, cpu_chunk, gpu_chunk, 0, [&](std::size_t at) {
      // The inputs of the first differing element, for the codes/scales sections.
      const auto view = parse_chunk(cpu_chunk);
      if (!view.is_ok() || at < kChunkHeaderBytes) return std::string();
      const std::size_t scales_end = kChunkHeaderBytes + 4 * view->layout.scale_count;
      std::size_t e = 0;
      if (at < scales_end)
        e = (at - kChunkHeaderBytes) / 4 * c.block;
      else
        e = (at - scales_end) * 8 / codec_code_bits(c.codec);
      if (e >= c.n) return std::string();
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %zu: input %.9g residual %.9g%s", e, static_cast<double>(values[e]),
                    c.residual ? static_cast<double>(residual_values[e]) : 0.0,
                    scaled ? (" (block " + std::to_string(e / c.block) + ")").c_str() : "");
      return std::string(buf);
    });
    check_decoders(c, name, cpu_chunk, input, residual_values);
  }

  void check_decoders(const Case& c, const std::string& name, const std::vector<std::uint8_t>& chunk,
                      const std::vector<std::uint8_t>& input, const std::vector<float>& residual_values) {
    std::uint8_t* d_chunk = chunk_->at(c.chunk_shift);
    upload(d_chunk, chunk.data(), chunk.size());
    const bool give_header = (c.data_seed & 1) != 0;  // alternate: host header given / read back
    const gpu::DeviceChunk dc{d_chunk, chunk.size(), give_header ? chunk.data() : nullptr};
    const std::size_t n = c.n;
    const std::size_t out_shift = c.input_shift;  // misaligned outputs with misaligned inputs

    for (DType out_dtype : {DType::kF32, DType::kF16, DType::kBf16}) {
      const std::size_t esize = dtype_size(out_dtype);
      std::vector<std::uint8_t> cpu_out(n * esize);
      const Status cs = decode(chunk, cpu_out.data(), out_dtype, n);
      std::uint8_t* d_out = out_->at(out_shift * esize);
      const Status gs = gpu::decode(*ws_, dc, d_out, out_dtype, n, stream_);
      const std::string what = "decode->" + std::string(dtype_name(out_dtype)) + " " + name;
      if (same_status(tally, what + " status", cs, gs) && cs.is_ok())
        same_bytes(tally, what, cpu_out, download(d_out, n * esize), esize);
    }
    {
      auto acc = make_values(n, c.data_seed * 7 + 3, 2.0f);
      const auto acc0 = float_bytes(acc);
      const Status cs = decode_accumulate(chunk, acc.data(), n);
      float* d_acc = reinterpret_cast<float*>(out_->at(4 * out_shift));
      upload(d_acc, acc0.data(), acc0.size());
      const Status gs = gpu::decode_accumulate(*ws_, dc, d_acc, n, stream_);
      const std::string what = "decode_accumulate " + name;
      if (same_status(tally, what + " status", cs, gs) && cs.is_ok())
        same_bytes(tally, what, float_bytes(acc), download(d_acc, 4 * n), 4);
    }
    if (codec_uses_error_feedback(c.codec)) {
      std::vector<float> res = c.residual ? residual_values : std::vector<float>(n, 0.0f);
      const auto res0 = float_bytes(res);
      const Status cs = residual_update(chunk, input.data(), c.dtype, n, res.data());
      std::uint8_t* d_input = input_->at(c.input_shift * dtype_size(c.dtype));
      upload(d_input, input.data(), input.size());
      float* d_res = reinterpret_cast<float*>(residual_->at(4 * out_shift));
      upload(d_res, res0.data(), res0.size());
      const Status gs = gpu::residual_update(*ws_, dc, d_input, c.dtype, n, d_res, stream_);
      const std::string what = "residual_update " + name;
      if (same_status(tally, what + " status", cs, gs) && cs.is_ok())
        same_bytes(tally, what, float_bytes(res), download(d_res, 4 * n), 4);
    }
  }

  /// Decoders on a chunk that is malformed: statuses must equal the CPU's (header errors, bad
  /// scales, unused bits, padding, invalid codes).
  void corrupt(const std::string& what, const std::vector<std::uint8_t>& chunk, std::size_t n, bool give_header) {
    std::uint8_t* d_chunk = chunk_->at(0);
    upload(d_chunk, chunk.data(), chunk.size());
    const gpu::DeviceChunk dc{d_chunk, chunk.size(), give_header ? chunk.data() : nullptr};
    std::vector<float> cpu_out(n);
    const Status cs = decode(chunk, cpu_out.data(), DType::kF32, n);
    const Status gs = gpu::decode(*ws_, dc, out_->at(0), DType::kF32, n, stream_);
    same_status(tally, "corrupt chunk (" + what + ") decode", cs, gs);
    std::vector<float> acc(n, 1.0f);
    const Status cs2 = decode_accumulate(chunk, acc.data(), n);
    const Status gs2 = gpu::decode_accumulate(*ws_, dc, reinterpret_cast<float*>(out_->at(0)), n, stream_);
    same_status(tally, "corrupt chunk (" + what + ") decode_accumulate", cs2, gs2);
  }

  gpu::Workspace& ws() { return *ws_; }
  cudaStream_t stream() const { return stream_; }
  DeviceBuffer& input() { return *input_; }
  DeviceBuffer& chunk() { return *chunk_; }
  DeviceBuffer& out() { return *out_; }
  std::size_t max_n() const { return max_n_; }
  bool pageable() const { return pageable_; }

 private:
  std::size_t max_n_;
  bool pageable_ = false;
  std::unique_ptr<gpu::Workspace> ws_;
  std::unique_ptr<DeviceBuffer> input_, residual_, chunk_, out_;
  cudaStream_t stream_ = nullptr;
};

void sweep_exact(Checker& ck, bool quick) {
  std::vector<std::size_t> sizes = {0,   1,   2,    3,    4,    5,    7,    13,   31,    32,    33,   63,
                                    64,  65,  97,   127,  128,  129,  255,  256,  257,   383,   1000, 1021,
                                    4095, 4096, 4097, 8191, 8192, 12289, 65537};
  if (!quick) sizes.push_back((std::size_t{1} << 20) + 3);  // ~1M, odd
  const std::uint32_t blocks[] = {32, 64, 128, 256, 512, 1024, 2048, 4096};
  const Codec codecs[] = {Codec::kFp32, Codec::kFp16, Codec::kBf16, Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf};
  const DType dtypes[] = {DType::kF32, DType::kF16, DType::kBf16};
  std::uint64_t seed = 1;
  for (std::size_t n : sizes) {
    std::printf("  exact sweep n=%zu (%zu passed, %zu failed so far)\n", n, ck.tally.passed, ck.tally.failed);
    std::fflush(stdout);
    const auto values = make_values(n, 1000 + n);
    const auto residual = make_values(n, 2000 + n, 0.25f);
    const bool big = n > 100000;
    for (Codec codec : codecs) {
      const bool scaled = codec_is_block_scaled(codec);
      for (DType dtype : dtypes) {
        for (std::uint32_t block : blocks) {
          if (!scaled && block != 128) continue;  // ignored by cast codecs
          if (big && block != 32 && block != 128 && block != 4096) continue;
          Case c;
          c.codec = codec;
          c.dtype = dtype;
          c.n = n;
          c.block = block;
          c.data_seed = seed++;
          ck.run(c, values, residual);  // aligned, offset 0
          if (codec == Codec::kTernGrad) {
            Case v = c;
            v.clip = true;
            v.data_seed = seed++;
            ck.run(v, values, residual);
            v.clip_sigmas = 0.75f;  // clips often
            v.data_seed = seed++;
            ck.run(v, values, residual);
            v = c;
            v.element_offset = 3ull * block;  // chunk of a larger tensor
            v.data_seed = seed++;
            ck.run(v, values, residual);
            v.element_offset = 5;  // not a multiple of 4: quads straddle Philox blocks
            v.data_seed = seed++;
            ck.run(v, values, residual);
            v.element_offset = ~std::uint64_t{0} - 5;  // the counter wraps
            v.data_seed = seed++;
            ck.run(v, values, residual);
          }
          if (codec_uses_error_feedback(codec)) {
            Case v = c;
            v.residual = true;
            v.data_seed = seed++;
            ck.run(v, values, residual);
            v.input_shift = 1;
            v.chunk_shift = 3;
            v.data_seed = seed++;
            ck.run(v, values, residual);
          }
          if (!big || block == 128) {  // misaligned input (scalar loads) and chunk (byte access)
            for (std::size_t chunk_shift : {std::size_t{1}, std::size_t{2}}) {
              Case v = c;
              v.input_shift = 1;
              v.chunk_shift = chunk_shift;
              v.data_seed = seed++;
              ck.run(v, values, residual);
            }
          }
        }
      }
    }
  }
}

/// Non-finite inputs/residuals and cast overflows: status (with count and first index) and report.
void sweep_nonfinite(Checker& ck) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::uint64_t seed = 900000;
  for (std::size_t n : {std::size_t{1}, std::size_t{37}, std::size_t{300}, std::size_t{5000}}) {
    for (Codec codec : {Codec::kFp32, Codec::kFp16, Codec::kBf16, Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf}) {
      for (int pattern = 0; pattern < 5; ++pattern) {
        auto values = make_values(n, seed);
        auto residual = make_values(n, seed + 1, 0.25f);
        Case c;
        c.codec = codec;
        c.n = n;
        c.block = 64;
        c.data_seed = seed++;
        switch (pattern) {
          case 0: values[n - 1] = nan; break;
          case 1:
            values[n / 2] = inf;
            values[n / 3] = -inf;
            values[n - 1] = nan;
            break;
          case 2:  // in the residual (error-feedback codecs), else in the input
            if (codec_uses_error_feedback(codec)) {
              c.residual = true;
              residual[n / 4] = nan;
              residual[n - 1] = inf;
            } else {
              values[0] = -inf;
            }
            break;
          case 3:  // finite but overflows fp16 (and bf16 at 3.4e38): only the casts complain
            values[n / 5] = 70000.0f;
            values[n - 1] = -3.4e38f;
            break;
          case 4:  // finite values whose block sum Σ|x| overflows fp32 (error-feedback scales)
            for (std::size_t i = n / 2; i < n; i += 2) values[i] = (i & 2) ? 3e38f : -3e38f;
            break;
        }
        ck.run(c, values, residual);
        if (codec_uses_error_feedback(codec) && pattern != 2) {
          c.residual = true;
          ck.run(c, values, residual);
        }
      }
    }
  }
  // fp16 decode overflow of a finite fp32 chunk / a large terngrad scale.
  for (Codec codec : {Codec::kFp32, Codec::kTernGrad}) {
    auto values = make_values(3001, 77, 1.0f);
    values[10] = 1e5f;
    values[2000] = -7e4f;
    Case c;
    c.codec = codec;
    c.n = values.size();
    c.data_seed = 99;
    ck.run(c, values, {});
  }
}

void sweep_corrupt(Checker& ck) {
  for (Codec codec : {Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf, Codec::kFp16, Codec::kFp32}) {
    for (std::size_t n : {std::size_t{5}, std::size_t{130}, std::size_t{1001}}) {
      const auto values = make_values(n, 31 + n);
      EncodeOptions o;
      o.codec = codec;
      o.block_size = 32;
      std::vector<std::uint8_t> chunk(*encoded_size(codec, 32, n));
      if (!encode(values.data(), DType::kF32, n, nullptr, o, chunk).is_ok()) die("reference encode failed");
      const auto view = *parse_chunk(chunk);
      const std::size_t codes = kChunkHeaderBytes + 4 * view.layout.scale_count;
      const std::string base = std::string(codec_name(codec)) + " n=" + std::to_string(n);
      for (bool give_header : {true, false}) {
        const std::string tag = base + (give_header ? " host header" : " device header");
        auto bad = [&](const std::string& what, const std::function<void(std::vector<std::uint8_t>&)>& mutate) {
          auto copy = chunk;
          mutate(copy);
          // Decode with the count the (mutated) header states: a chunk that is both malformed after
          // its header and of the wrong count is reported differently by design (the GPU checks
          // the count on the host before its kernels validate the payload); see cuda_codec.h.
          std::uint32_t count = static_cast<std::uint32_t>(n);
          if (copy.size() >= 12) std::memcpy(&count, copy.data() + 8, 4);
          ck.corrupt(what + ", " + tag, copy, count, give_header);
        };
        ck.corrupt("intact, " + tag, chunk, n, give_header);
        bad("magic", [](auto& b) { b[0] = 'X'; });
        bad("version", [](auto& b) { b[2] = 9; });
        bad("codec", [](auto& b) { b[3] = 17; });
        bad("block size", [](auto& b) { b[4] = b[4] ? 13 : 5; });
        bad("flags", [](auto& b) { b[5] = 0x80; });
        bad("reserved", [](auto& b) { b[7] = 1; });
        bad("count", [](auto& b) { b[8] ^= 1; });
        bad("payload length", [](auto& b) { b[12] ^= 4; });
        bad("truncated", [](auto& b) { b.pop_back(); });
        bad("trailing", [](auto& b) { b.push_back(0); });
        bad("short", [](auto& b) { b.resize(9); });
        if (view.layout.scale_count) {
          bad("negative scale", [&](auto& b) { b[kChunkHeaderBytes + 4 * (view.layout.scale_count - 1) + 3] |= 0x80; });
          bad("NaN scales", [&](auto& b) {
            for (std::size_t s = view.layout.scale_count / 2; s < view.layout.scale_count; ++s) {
              b[kChunkHeaderBytes + 4 * s + 3] = 0x7F;
              b[kChunkHeaderBytes + 4 * s + 2] = 0xC0;
            }
          });
        }
        if (codec == Codec::kTernGrad || codec == Codec::kTernaryEf) {
          bad("one invalid code", [&](auto& b) { b[codes] = static_cast<std::uint8_t>((b[codes] & ~0x0Cu) | 0x08u); });
          bad("many invalid codes", [&](auto& b) {
            for (std::size_t i = codes; i < codes + view.layout.code_bytes; i += 3)
              b[i] = static_cast<std::uint8_t>(i + 1 == codes + view.layout.code_bytes ? 0x0A : 0xAA);
          });
        }
        if (!codec_is_block_scaled(codec)) {  // NaN/Inf in a cast chunk are invalid codes
          const std::size_t esize = codec == Codec::kFp32 ? 4 : 2;
          bad("NaN value", [&](auto& b) {
            b[codes + esize * (n - 1) + esize - 1] = 0x7F;
            b[codes + esize * (n - 1) + esize - 2] = 0xFF;
          });
          bad("Inf values", [&](auto& b) {
            // -Inf, little-endian: fp32 00 00 80 ff, fp16 00 fc, bf16 80 ff.
            const std::vector<std::uint8_t> inf = codec == Codec::kFp32   ? std::vector<std::uint8_t>{0x00, 0x00, 0x80, 0xFF}
                                                  : codec == Codec::kFp16 ? std::vector<std::uint8_t>{0x00, 0xFC}
                                                                          : std::vector<std::uint8_t>{0x80, 0xFF};
            for (std::size_t i = 0; i < n; i += 2) std::memcpy(b.data() + codes + esize * i, inf.data(), esize);
          });
        }
        const std::size_t used_bits = n * codec_code_bits(codec);
        if (used_bits % 8) bad("unused bits", [&](auto& b) { b[codes + view.layout.code_bytes - 1] |= 0x80; });
        if (view.layout.payload_bytes > 4 * view.layout.scale_count + view.layout.code_bytes)
          bad("padding", [](auto& b) { b.back() = 1; });
      }
    }
  }
}

/// Argument errors: the GPU must reject what the CPU rejects (same status), plus device rules.
void sweep_arguments(Checker& ck) {
  Tally& t = ck.tally;
  gpu::Workspace& ws = ck.ws();
  const std::size_t n = 64;
  const auto values = make_values(n, 5);
  upload(ck.input().at(), values.data(), 4 * n);
  const float* d_in = reinterpret_cast<const float*>(ck.input().at());
  float* d_res = reinterpret_cast<float*>(ck.out().at());
  std::uint8_t* d_chunk = ck.chunk().at();
  const std::size_t cap = ck.chunk().size();
  std::vector<std::uint8_t> host_chunk(4096);
  std::vector<float> host_residual(n);

  auto both = [&](const std::string& what, const EncodeOptions& o, DType dtype, bool residual, bool null_input,
                  std::size_t capacity) {
    const Status cs = encode(null_input ? nullptr : values.data(), dtype, n, residual ? host_residual.data() : nullptr, o,
                             std::span(host_chunk).first(std::min(capacity, host_chunk.size())));
    const Status gs = gpu::encode_async(ws, null_input ? nullptr : d_in, dtype, n, residual ? d_res : nullptr, o,
                                        d_chunk, capacity, ck.stream());
    if (gs.is_ok()) (void)ws.finish();
    same_status(t, "bad argument: " + what, cs, gs);
  };
  EncodeOptions o;
  both("terngrad with a residual", o, DType::kF32, true, false, cap);
  o.clip = true;
  o.clip_sigmas = -1.0f;
  both("negative clip", o, DType::kF32, false, false, cap);
  o = EncodeOptions{};
  o.codec = Codec::kSignEf;
  o.clip = true;
  both("clip with sign-ef", o, DType::kF32, false, false, cap);
  o = EncodeOptions{};
  o.block_size = 100;
  both("block size 100", o, DType::kF32, false, false, cap);
  o.block_size = 8192;
  both("block size 8192", o, DType::kF32, false, false, cap);
  o = EncodeOptions{};
  both("small output", o, DType::kF32, false, false, 20);
  both("null input", o, DType::kF32, false, true, cap);
  both("bad dtype", o, static_cast<DType>(7), false, false, cap);
  o.codec = static_cast<Codec>(9);
  both("bad codec", o, DType::kF32, false, false, cap);

  // Device-only rules.
  o = EncodeOptions{};
  auto rejected = [&](const std::string& what, const Status& s) {
    if (s.is_ok()) (void)ws.finish();
    expect(t, "bad argument: " + what, s.code() == StatusCode::kInvalidArgument, s.to_string());
  };
  if (!ck.pageable()) {  // else the GPU may read plain host memory (HMM/ATS) and it is accepted
    rejected("host input", gpu::encode_async(ws, values.data(), DType::kF32, n, nullptr, o, d_chunk, cap, ck.stream()));
    rejected("host output",
             gpu::encode_async(ws, d_in, DType::kF32, n, nullptr, o, host_chunk.data(), host_chunk.size(), ck.stream()));
  }
  rejected("misaligned fp32 input", gpu::encode_async(ws, ck.input().at(2), DType::kF32, n - 1, nullptr, o, d_chunk, cap,
                                                      ck.stream()));
  rejected("null output", gpu::encode_async(ws, d_in, DType::kF32, n, nullptr, o, nullptr, cap, ck.stream()));
  {
    const Status first = gpu::encode_async(ws, d_in, DType::kF32, n, nullptr, o, d_chunk, cap, ck.stream());
    expect(t, "async encode starts", first.is_ok(), first.to_string());
    expect(t, "workspace pending", ws.pending());
    rejected("second operation while pending",
             gpu::encode_async(ws, d_in, DType::kF32, n, nullptr, o, d_chunk, cap, ck.stream()));
    EncodeReport r;
    const Status done = ws.finish(&r);
    expect(t, "finish", done.is_ok() && r.bytes == *encoded_size(o.codec, o.block_size, n), done.to_string());
    expect(t, "finish without a pending operation", ws.finish().code() == StatusCode::kInvalidArgument);
  }
  // Decoder argument errors against the CPU's.
  std::vector<std::uint8_t> chunk(*encoded_size(Codec::kTernGrad, 128, n));
  if (!encode(values.data(), DType::kF32, n, nullptr, EncodeOptions{}, chunk).is_ok()) die("reference encode failed");
  upload(d_chunk, chunk.data(), chunk.size());
  const gpu::DeviceChunk dc{d_chunk, chunk.size(), chunk.data()};
  std::vector<float> host_out(n + 1);
  same_status(t, "bad argument: decode count mismatch", decode(chunk, host_out.data(), DType::kF32, n + 1),
              gpu::decode(ws, dc, ck.out().at(), DType::kF32, n + 1, ck.stream()));
  same_status(t, "bad argument: decode null output", decode(chunk, nullptr, DType::kF32, n),
              gpu::decode(ws, dc, nullptr, DType::kF32, n, ck.stream()));
  same_status(t, "bad argument: decode bad dtype", decode(chunk, host_out.data(), static_cast<DType>(5), n),
              gpu::decode(ws, dc, ck.out().at(), static_cast<DType>(5), n, ck.stream()));
  same_status(t, "bad argument: residual_update of terngrad",
              residual_update(chunk, values.data(), DType::kF32, n, host_residual.data()),
              gpu::residual_update(ws, dc, d_in, DType::kF32, n, d_res, ck.stream()));
  if (!ck.pageable())
    rejected("decode to host memory", gpu::decode_async(ws, dc, host_out.data(), DType::kF32, n, ck.stream()));
  rejected("misaligned accumulator",
           gpu::decode_accumulate_async(ws, dc, reinterpret_cast<float*>(ck.out().at(2)), n, ck.stream()));
  // Empty chunks.
  std::vector<std::uint8_t> empty(*encoded_size(Codec::kSignEf, 64, 0));
  EncodeOptions eo;
  eo.codec = Codec::kSignEf;
  eo.block_size = 64;
  if (!encode(nullptr, DType::kF32, 0, nullptr, eo, empty).is_ok()) die("reference encode failed");
  upload(d_chunk, empty.data(), empty.size());
  const gpu::DeviceChunk de{d_chunk, empty.size(), nullptr};
  same_status(t, "empty decode", Status::ok(), gpu::decode(ws, de, nullptr, DType::kF32, 0, ck.stream()));
  same_status(t, "empty residual_update", Status::ok(),
              gpu::residual_update(ws, de, nullptr, DType::kF16, 0, nullptr, ck.stream()));
}

/// scale_async (ternd's mean): one fp32 multiplication per element, as the CPU's.
void sweep_scale(Checker& ck) {
  Tally& t = ck.tally;
  for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{1} << 20}) {
    for (float factor : {1.0f / 3.0f, 0.125f, 1.0f / 7.0f}) {
      std::vector<float> values = make_values(n, 4242 + n);
      float* d = reinterpret_cast<float*>(ck.out().at(0));
      upload(d, values.data(), 4 * n);
      const Status s = gpu::scale_async(d, n, factor, ck.stream());
      cuda_ok(cudaStreamSynchronize(ck.stream()), "cudaStreamSynchronize");
      for (float& v : values) v *= factor;
      if (same_status(t, "scale n=" + std::to_string(n) + " status", Status::ok(), s))
        same_bytes(t, "scale n=" + std::to_string(n), float_bytes(values), download(d, 4 * n), 4);
    }
  }
  std::vector<float> host(4, 1.0f);
  expect(t, "scale rejects host memory",
         gpu::scale_async(host.data(), host.size(), 0.5f, ck.stream()).code() == StatusCode::kInvalidArgument);
  expect(t, "scale of nothing is OK", gpu::scale_async(nullptr, 0, 0.5f, ck.stream()).is_ok());
}

int run_check(bool quick, std::string& json) {
  if (!set_cpu_isa(CpuIsa::kScalar).is_ok()) die("cannot select the scalar CPU implementation");
  Checker ck((std::size_t{1} << 20) + 64);
  std::printf("== check: CUDA vs CPU scalar, bit for bit ==\n");
  std::fflush(stdout);
  std::printf("  arguments...\n");
  sweep_arguments(ck);
  std::printf("  corrupt chunks...\n");
  sweep_corrupt(ck);
  std::printf("  non-finite inputs...\n");
  std::fflush(stdout);
  sweep_nonfinite(ck);
  sweep_exact(ck, quick);
  std::printf("  scale...\n");
  sweep_scale(ck);
  const Tally& t = ck.tally;
  std::printf("check: %zu passed, %zu failed\n", t.passed, t.failed);
  std::printf("%s\n", t.failed ? "CHECK FAIL" : "CHECK PASS");
  json += "\"check\": {\"passed\": " + std::to_string(t.passed) + ", \"failed\": " + std::to_string(t.failed) + "}";
  return t.failed ? kExitFail : 0;
}

// ---- bench ----------------------------------------------------------------------------------------

struct Timer {
  cudaEvent_t start = nullptr, stop = nullptr;
  Timer() {
    cuda_ok(cudaEventCreate(&start), "cudaEventCreate");
    cuda_ok(cudaEventCreate(&stop), "cudaEventCreate");
  }
  ~Timer() {
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Median milliseconds of `op` (enqueued on `stream` between the events), after warm-ups;
  /// `after` runs once per iteration after the stop event (e.g. finish()). The stream is held
  /// by a host-function gate until everything is enqueued, so the time is the GPU's alone and
  /// not the host's enqueue overhead (argument checks, launch) as well.
  double median_ms(cudaStream_t stream, const std::function<void()>& op, const std::function<void()>& after) {
    constexpr int kWarmup = 3, kIters = 20;
    std::vector<double> ms;
    for (int i = 0; i < kWarmup + kIters; ++i) {
      std::atomic<bool> gate{false};
      g_gate = &gate;
      cuda_ok(cudaLaunchHostFunc(
                  stream,
                  [](void* flag) {
                    while (!static_cast<std::atomic<bool>*>(flag)->load()) std::this_thread::yield();
                  },
                  &gate),
              "cudaLaunchHostFunc");
      cuda_ok(cudaEventRecord(start, stream), "cudaEventRecord");
      op();
      cuda_ok(cudaEventRecord(stop, stream), "cudaEventRecord");
      gate.store(true);
      g_gate = nullptr;
      after();
      cuda_ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
      float elapsed = 0;
      cuda_ok(cudaEventElapsedTime(&elapsed, start, stop), "cudaEventElapsedTime");
      if (i >= kWarmup) ms.push_back(elapsed);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }
};

struct BenchRow {
  Codec codec;
  DType dtype;
  bool clip;
  bool residual;
  std::string label() const {
    std::string s(codec_name(codec));
    if (clip) s += "+clip";
    if (residual) s += "+res";
    return s + " " + std::string(dtype_name(dtype));
  }
};

int run_bench(bool quick, std::vector<std::size_t> mibs, std::string& json) {
  std::printf("== bench: median of 20 after 3 warm-ups; GB/s = bytes read + written / time; ratio vs D2D copy ==\n");
  if (mibs.empty()) mibs = quick ? std::vector<std::size_t>{1, 64, 256} : std::vector<std::size_t>{1, 4, 16, 64, 256};
  std::sort(mibs.begin(), mibs.end());
  const BenchRow rows[] = {
      {Codec::kFp32, DType::kF32, false, false},     {Codec::kFp16, DType::kF32, false, false},
      {Codec::kBf16, DType::kF32, false, false},     {Codec::kTernGrad, DType::kF32, false, false},
      {Codec::kTernGrad, DType::kF16, false, false}, {Codec::kTernGrad, DType::kBf16, false, false},
      {Codec::kTernGrad, DType::kF32, true, false},  {Codec::kTernaryEf, DType::kF32, false, true},
      {Codec::kSignEf, DType::kF32, false, true},
  };
  auto ws_result = gpu::Workspace::create();
  if (!ws_result.is_ok()) die(ws_result.status().to_string());
  gpu::Workspace ws = std::move(ws_result).value();
  cudaStream_t stream;
  cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  Timer timer;
  const std::size_t max_n = mibs.back() << 18;
  DeviceBuffer in32(4 * max_n), in16(2 * max_n), inbf(2 * max_n), residual(4 * max_n), acc(4 * max_n),
      copy_dst(4 * max_n), chunk(4 * max_n + 4096 + 4 * (max_n / 32));
  {
    // Inputs: a cheap pseudo-Gaussian (sum of uniforms), the same for every size.
    std::vector<float> v(max_n);
    std::uint64_t s = 0x9E3779B97F4A7C15ull;
    for (auto& x : v) {
      float sum = 0;
      for (int k = 0; k < 4; ++k) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        sum += static_cast<float>(s >> 40) * 0x1p-24f;
      }
      x = sum - 2.0f;
    }
    upload(in32.at(), v.data(), 4 * max_n);
    upload(in16.at(), as_dtype(v, DType::kF16).data(), 2 * max_n);
    upload(inbf.at(), as_dtype(v, DType::kBf16).data(), 2 * max_n);
    for (auto& x : v) x *= 0.01f;
    upload(residual.at(), v.data(), 4 * max_n);
    cuda_ok(cudaMemset(acc.at(), 0, 4 * max_n), "cudaMemset");
    cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize");  // uploads done before the timed stream runs
  }

  std::printf("%-22s %8s %10s %10s %8s %10s %10s %8s\n", "codec dtype", "MiB(f32)", "enc us", "enc GB/s", "enc/cp",
              "dacc us", "dacc GB/s", "dacc/cp");
  json += "\"bench\": [";
  bool first_json = true;
  double acceptance_ratio = -1;
  for (std::size_t mib : mibs) {
    const std::size_t n = mib << 18;
    // Copy baselines for 4- and 2-byte inputs of n elements.
    double copy_ms[2];
    for (int k = 0; k < 2; ++k) {
      const std::size_t bytes = n * (k == 0 ? 4 : 2);
      copy_ms[k] = timer.median_ms(
          stream, [&] { cuda_ok(cudaMemcpyAsync(copy_dst.at(), in32.at(), bytes, cudaMemcpyDeviceToDevice, stream), "copy"); },
          [] {});
    }
    const double copy4_gbs = 2.0 * 4 * static_cast<double>(n) / (copy_ms[0] * 1e6);
    const double copy2_gbs = 2.0 * 2 * static_cast<double>(n) / (copy_ms[1] * 1e6);
    std::printf("%-22s %8zu %10.1f %10.1f %8s   (device-to-device copy of %zu MiB; %.1f us / %.1f GB/s for the 2-byte input)\n",
                "memcpy D2D", mib, copy_ms[0] * 1e3, copy4_gbs, "1.00", mib, copy_ms[1] * 1e3, copy2_gbs);
    json += std::string(first_json ? "" : ",") + "\n  {\"op\": \"memcpy\", \"mib\": " + std::to_string(mib) +
            ", \"us\": " + std::to_string(copy_ms[0] * 1e3) + ", \"gbs\": " + std::to_string(copy4_gbs) +
            ", \"us_2byte\": " + std::to_string(copy_ms[1] * 1e3) + ", \"gbs_2byte\": " + std::to_string(copy2_gbs) + "}";
    first_json = false;
    for (const BenchRow& row : rows) {
      EncodeOptions o;
      o.codec = row.codec;
      o.clip = row.clip;
      o.seed = 1234;
      const void* input = row.dtype == DType::kF32 ? in32.at() : row.dtype == DType::kF16 ? in16.at() : inbf.at();
      const float* res = row.residual ? reinterpret_cast<const float*>(residual.at()) : nullptr;
      const std::size_t chunk_bytes = *encoded_size(o.codec, o.block_size, n);
      Status status;
      const double enc_ms = timer.median_ms(
          stream,
          [&] {
            const Status s = gpu::encode_async(ws, input, row.dtype, n, res, o, chunk.at(), chunk.size(), stream);
            if (!s.is_ok()) die("encode_async: " + s.to_string());
          },
          [&] { status = ws.finish(); });
      if (!status.is_ok()) die("encode: " + status.to_string());
      std::vector<std::uint8_t> header = download(chunk.at(), kChunkHeaderBytes);
      const gpu::DeviceChunk dc{chunk.at(), chunk_bytes, header.data()};
      const double dacc_ms = timer.median_ms(
          stream,
          [&] {
            const Status s = gpu::decode_accumulate_async(ws, dc, reinterpret_cast<float*>(acc.at()), n, stream);
            if (!s.is_ok()) die("decode_accumulate_async: " + s.to_string());
          },
          [&] { status = ws.finish(); });
      if (!status.is_ok()) die("decode_accumulate: " + status.to_string());
      const double in_bytes = static_cast<double>(n * dtype_size(row.dtype)) + (res ? 4.0 * static_cast<double>(n) : 0.0);
      const double enc_gbs = (in_bytes + static_cast<double>(chunk_bytes)) / (enc_ms * 1e6);
      const double dacc_gbs = (static_cast<double>(chunk_bytes) + 8.0 * static_cast<double>(n)) / (dacc_ms * 1e6);
      const double enc_ratio = enc_gbs / (row.dtype == DType::kF32 ? copy4_gbs : copy2_gbs);
      const double dacc_ratio = dacc_gbs / copy4_gbs;
      std::printf("%-22s %8zu %10.1f %10.1f %8.2f %10.1f %10.1f %8.2f\n", row.label().c_str(), mib, enc_ms * 1e3,
                  enc_gbs, enc_ratio, dacc_ms * 1e3, dacc_gbs, dacc_ratio);
      std::fflush(stdout);
      json += ",\n  {\"op\": \"codec\", \"codec\": \"" + std::string(codec_name(row.codec)) + "\", \"dtype\": \"" +
              std::string(dtype_name(row.dtype)) + "\", \"clip\": " + (row.clip ? "true" : "false") +
              ", \"residual\": " + (row.residual ? "true" : "false") + ", \"mib\": " + std::to_string(mib) +
              ", \"chunk_bytes\": " + std::to_string(chunk_bytes) + ", \"encode_us\": " + std::to_string(enc_ms * 1e3) +
              ", \"encode_gbs\": " + std::to_string(enc_gbs) + ", \"encode_ratio\": " + std::to_string(enc_ratio) +
              ", \"decode_accumulate_us\": " + std::to_string(dacc_ms * 1e3) +
              ", \"decode_accumulate_gbs\": " + std::to_string(dacc_gbs) +
              ", \"decode_accumulate_ratio\": " + std::to_string(dacc_ratio) + "}";
      if (row.codec == Codec::kTernGrad && row.dtype == DType::kF32 && !row.clip && mib == 256) acceptance_ratio = enc_ratio;
    }
  }
  json += "\n]";
  (void)cudaStreamDestroy(stream);
  if (acceptance_ratio < 0) {
    std::printf("ACCEPTANCE terngrad fp32 256 MiB encode: not measured (256 MiB not in the size list)\n");
    json += ", \"acceptance\": null";
    return 0;
  }
  const bool pass = acceptance_ratio >= 0.70;
  std::printf("ACCEPTANCE terngrad fp32 256 MiB encode: %.1f%% of D2D copy bandwidth (target >= 70%%): %s\n",
              100 * acceptance_ratio, pass ? "PASS" : "FAIL");
  json += ", \"acceptance\": {\"ratio\": " + std::to_string(acceptance_ratio) + ", \"pass\": " + (pass ? "true" : "false") + "}";
  return pass ? 0 : kExitSlow;
}

void print_device() {
  int device = 0;
  cuda_ok(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int driver = 0, runtime = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  std::printf("device %d: %s, compute capability %d.%d, %d SMs, %.1f GiB; driver %d, runtime %d\n", device, prop.name,
              prop.major, prop.minor, prop.multiProcessorCount,
              static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), driver, runtime);
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false, bench = false, quick = false;
  std::string json_path;
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--check") {
      check = true;
    } else if (arg == "--bench") {
      bench = true;
    } else if (arg == "--quick") {
      quick = true;
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "--sizes" && i + 1 < argc) {  // bench sizes in MiB of fp32 elements, e.g. 1,64,256
      for (const char* p = argv[++i]; *p;) {
        char* end = nullptr;
        const unsigned long v = std::strtoul(p, &end, 10);
        if (end == p || v == 0 || v > 4096) {
          std::fprintf(stderr, "--sizes: expected MiB values like 1,64,256\n");
          return kExitError;
        }
        sizes.push_back(v);
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') {
          std::fprintf(stderr, "--sizes: expected MiB values like 1,64,256\n");
          return kExitError;
        }
      }
    } else {
      std::fprintf(stderr, "usage: %s [--check] [--bench] [--quick] [--sizes MIB,MIB,...] [--json FILE]\n", argv[0]);
      return kExitError;
    }
  }
  if (!check && !bench) check = true;

  const Status available = gpu::device_available();
  if (!available.is_ok()) {
    std::printf("tern-gpu-check: no GPU: %s\n", available.to_string().c_str());
    return kExitNoGpu;
  }
  print_device();
  std::string json = "{";
  int rc = 0;
  if (check) rc = run_check(quick, json);
  if (bench) {
    if (check) json += ", ";
    const int bench_rc = run_bench(quick, sizes, json);
    if (rc == 0) rc = bench_rc;
  }
  json += "}\n";
  if (!json_path.empty()) {
    std::FILE* f = std::fopen(json_path.c_str(), "w");
    if (!f) die("cannot write " + json_path);
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  return rc;
}
