// CUDA codecs == CPU scalar reference, bit for bit (label `gpu`). Every test skips, with the
// reason from cuda::device_available(), on machines without a usable GPU.
//
// Covered: all codecs x input dtypes x sizes (0, 1, odd, primes, several blocks, ~1M) x block
// sizes x clip x residual x element offsets x buffer alignments; chunk bytes, decode to
// fp32/fp16/bf16, decode_accumulate, residual_update; non-finite reports; invalid codes and other
// corrupt chunks; bad arguments. `tern-gpu-check --check` runs a wider sweep of the same kind.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "codec_test_util.h"
#include "tern/kernels/codec.h"
#include "tern/kernels/cuda_codec.h"
#include "tern/kernels/wire_format.h"

namespace tern::kernels {
namespace {

namespace gpu = tern::kernels::cuda;
using testing::as_dtype;
using testing::gaussian;

void cuda_ok(cudaError_t e) { ASSERT_EQ(e, cudaSuccess) << cudaGetErrorName(e) << ": " << cudaGetErrorString(e); }

class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) {
    if (cudaMalloc(&ptr_, bytes ? bytes : 1) != cudaSuccess) ptr_ = nullptr;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  std::uint8_t* at(std::size_t offset = 0) const { return static_cast<std::uint8_t*>(ptr_) + offset; }
  bool ok() const { return ptr_ != nullptr; }

 private:
  void* ptr_ = nullptr;
};

std::vector<std::uint8_t> download(const void* p, std::size_t bytes) {
  std::vector<std::uint8_t> out(bytes);
  if (bytes) {
    EXPECT_EQ(cudaMemcpy(out.data(), p, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  }
  return out;
}
void upload(void* p, const void* src, std::size_t bytes) {
  if (bytes) {
    EXPECT_EQ(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  }
}
std::vector<std::uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<std::uint8_t> out(4 * v.size());
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

/// "" when equal, else where and how they first differ.
std::string first_difference(const std::vector<std::uint8_t>& cpu, const std::vector<std::uint8_t>& gpu) {
  if (cpu.size() != gpu.size()) return "sizes differ: cpu " + std::to_string(cpu.size()) + ", gpu " + std::to_string(gpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i)
    if (cpu[i] != gpu[i])
      return "first difference at byte " + std::to_string(i) + " of " + std::to_string(cpu.size()) + ": cpu " +
             std::to_string(cpu[i]) + ", gpu " + std::to_string(gpu[i]);
  return "";
}

constexpr std::size_t kMaxElements = (std::size_t{1} << 20) + 64;

class CudaCodec : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status available = gpu::device_available();
    if (!available.is_ok()) GTEST_SKIP() << available.message();
    ASSERT_TRUE(set_cpu_isa(CpuIsa::kScalar).is_ok());
    auto ws = gpu::Workspace::create();
    ASSERT_TRUE(ws.is_ok()) << ws.status().to_string();
    ws_ = std::make_unique<gpu::Workspace>(std::move(ws).value());
    cuda_ok(cudaStreamCreate(&stream_));  // blocking: ordered after the synchronous copies
    const std::size_t bytes = 4 * kMaxElements + 64;
    input_ = std::make_unique<DeviceBuffer>(bytes);
    residual_ = std::make_unique<DeviceBuffer>(bytes);
    chunk_ = std::make_unique<DeviceBuffer>(bytes + 4 * (kMaxElements / 32) + 64);
    out_ = std::make_unique<DeviceBuffer>(bytes);
    ASSERT_TRUE(input_->ok() && residual_->ok() && chunk_->ok() && out_->ok());
  }
  void TearDown() override {
    if (stream_) (void)cudaStreamDestroy(stream_);
  }

  struct Case {
    Codec codec = Codec::kTernGrad;
    DType dtype = DType::kF32;
    std::size_t n = 0;
    std::uint32_t block = kDefaultBlockSize;
    bool clip = false;
    bool residual = false;
    std::uint64_t element_offset = 0;
    std::size_t shift = 0;  // misalign tensors by one element and the chunk by 1 byte
    std::string name() const {
      return std::string(codec_name(codec)) + " " + std::string(dtype_name(dtype)) + " n=" + std::to_string(n) +
             " B=" + std::to_string(block) + (clip ? " clip" : "") + (residual ? " residual" : "") +
             " offset=" + std::to_string(element_offset) + " shift=" + std::to_string(shift);
    }
  };

  /// Encodes on both, compares chunk, status and report; then every decoder. Returns false on the
  /// first mismatch (the failure is recorded).
  bool check(const Case& c, const std::vector<float>& values, const std::vector<float>& residual) {
    SCOPED_TRACE(c.name());
    const auto input = as_dtype(values, c.dtype);
    EncodeOptions o;
    o.codec = c.codec;
    o.block_size = c.block;
    o.clip = c.clip;
    o.seed = 0x1234567890ABCDEFull + c.n;
    o.stream = 77;
    o.element_offset = c.element_offset;
    const float* host_res = c.residual ? residual.data() : nullptr;
    const std::size_t size = *encoded_size(c.codec, c.block, c.n);
    std::vector<std::uint8_t> cpu_chunk(size);
    EncodeReport cpu_report, gpu_report;
    const Status cpu_status = encode(input.data(), c.dtype, c.n, host_res, o, cpu_chunk, &cpu_report);

    const std::size_t esize = dtype_size(c.dtype);
    upload(input_->at(c.shift * esize), input.data(), input.size());
    float* d_res = nullptr;
    if (c.residual) {
      d_res = reinterpret_cast<float*>(residual_->at(4 * c.shift));
      upload(d_res, residual.data(), 4 * c.n);
    }
    std::uint8_t* d_chunk = chunk_->at(c.shift);
    EXPECT_EQ(cudaMemset(chunk_->at(), 0x5A, size + 8), cudaSuccess);
    const Status gpu_status =
        gpu::encode(*ws_, input_->at(c.shift * esize), c.dtype, c.n, d_res, o, d_chunk, size, stream_, &gpu_report);
    EXPECT_EQ(cpu_status.to_string(), gpu_status.to_string());
    EXPECT_EQ(cpu_report.bytes, gpu_report.bytes);
    EXPECT_EQ(cpu_report.nonfinite_count, gpu_report.nonfinite_count);
    EXPECT_EQ(cpu_report.first_nonfinite, gpu_report.first_nonfinite);
    if (cpu_status.to_string() != gpu_status.to_string()) return false;
    if (!cpu_status.is_ok()) return true;
    const std::string chunk_diff = first_difference(cpu_chunk, download(d_chunk, size));
    EXPECT_EQ(chunk_diff, "") << "chunk";
    if (!chunk_diff.empty()) return false;

    const gpu::DeviceChunk dc{d_chunk, size, (c.n & 1) ? cpu_chunk.data() : nullptr};
    for (DType out_dtype : testing::kAllDTypes) {
      const std::size_t osize = dtype_size(out_dtype);
      std::vector<std::uint8_t> cpu_out(c.n * osize);
      const Status cs = decode(cpu_chunk, cpu_out.data(), out_dtype, c.n);
      std::uint8_t* d_out = out_->at(c.shift * osize);
      const Status gs = gpu::decode(*ws_, dc, d_out, out_dtype, c.n, stream_);
      EXPECT_EQ(cs.to_string(), gs.to_string()) << "decode to " << dtype_name(out_dtype);
      if (cs.is_ok()) {
        EXPECT_EQ(first_difference(cpu_out, download(d_out, c.n * osize)), "") << "decode to " << dtype_name(out_dtype);
      }
    }
    {
      auto acc = gaussian(c.n, c.n + 5, 3.0f);
      float* d_acc = reinterpret_cast<float*>(out_->at(4 * c.shift));
      upload(d_acc, acc.data(), 4 * c.n);
      const Status cs = decode_accumulate(cpu_chunk, acc.data(), c.n);
      const Status gs = gpu::decode_accumulate(*ws_, dc, d_acc, c.n, stream_);
      EXPECT_EQ(cs.to_string(), gs.to_string()) << "decode_accumulate";
      if (cs.is_ok()) {
        EXPECT_EQ(first_difference(bytes_of(acc), download(d_acc, 4 * c.n)), "") << "decode_accumulate";
      }
    }
    if (codec_uses_error_feedback(c.codec)) {
      auto res = c.residual ? residual : std::vector<float>(c.n, 0.0f);
      float* d_r = reinterpret_cast<float*>(residual_->at(4 * c.shift));
      upload(d_r, res.data(), 4 * c.n);
      const Status cs = residual_update(cpu_chunk, input.data(), c.dtype, c.n, res.data());
      const Status gs = gpu::residual_update(*ws_, dc, input_->at(c.shift * esize), c.dtype, c.n, d_r, stream_);
      EXPECT_EQ(cs.to_string(), gs.to_string()) << "residual_update";
      if (cs.is_ok()) {
        EXPECT_EQ(first_difference(bytes_of(res), download(d_r, 4 * c.n)), "") << "residual_update";
      }
    }
    return !::testing::Test::HasFailure();
  }

  /// Decoders on a (possibly corrupt) CPU-made chunk: same status as the CPU.
  void check_corrupt(const std::vector<std::uint8_t>& chunk, std::size_t n, bool give_header) {
    upload(chunk_->at(), chunk.data(), chunk.size());
    const gpu::DeviceChunk dc{chunk_->at(), chunk.size(), give_header ? chunk.data() : nullptr};
    std::vector<float> out(n);
    EXPECT_EQ(decode(chunk, out.data(), DType::kF32, n).to_string(),
              gpu::decode(*ws_, dc, out_->at(), DType::kF32, n, stream_).to_string());
    EXPECT_EQ(decode_accumulate(chunk, out.data(), n).to_string(),
              gpu::decode_accumulate(*ws_, dc, reinterpret_cast<float*>(out_->at()), n, stream_).to_string());
  }

  std::unique_ptr<gpu::Workspace> ws_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<DeviceBuffer> input_, residual_, chunk_, out_;
};

constexpr Codec kScaled[] = {Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf};

TEST_F(CudaCodec, CastCodecsMatchTheCpuBitForBit) {
  for (std::size_t n : {0, 1, 2, 3, 5, 31, 32, 33, 127, 1000, 4097, 65537}) {
    const auto values = gaussian(n, n + 1, 100.0f);
    for (Codec codec : {Codec::kFp32, Codec::kFp16, Codec::kBf16})
      for (DType dtype : testing::kAllDTypes)
        for (std::size_t shift : {0, 1})
          ASSERT_TRUE(check({codec, dtype, n, kDefaultBlockSize, false, false, 0, shift}, values, {}));
  }
}

TEST_F(CudaCodec, BlockScaledCodecsMatchTheCpuBitForBit) {
  for (std::size_t n : {0, 1, 3, 7, 31, 32, 33, 63, 65, 127, 128, 129, 255, 257, 1021, 4096, 4097, 12289}) {
    const auto values = gaussian(n, n + 2);
    const auto residual = gaussian(n, n + 3, 0.3f);
    for (Codec codec : kScaled)
      for (DType dtype : testing::kAllDTypes)
        for (std::uint32_t block : {32u, 64u, 128u, 256u, 1024u, 4096u}) {
          const bool ef = codec_uses_error_feedback(codec);
          ASSERT_TRUE(check({codec, dtype, n, block, false, false, 0, 0}, values, residual));
          if (codec == Codec::kTernGrad) {
            ASSERT_TRUE(check({codec, dtype, n, block, true, false, 0, 0}, values, residual));
            ASSERT_TRUE(check({codec, dtype, n, block, false, false, 5ull * block, 0}, values, residual));
            ASSERT_TRUE(check({codec, dtype, n, block, false, false, 3, 1}, values, residual));  // straddles Philox quads
          }
          if (ef) {
            ASSERT_TRUE(check({codec, dtype, n, block, false, true, 0, 0}, values, residual));
            ASSERT_TRUE(check({codec, dtype, n, block, false, true, 0, 1}, values, residual));
          }
        }
  }
}

TEST_F(CudaCodec, AboutAMillionElements) {
  const std::size_t n = (std::size_t{1} << 20) + 3;
  const auto values = gaussian(n, 11);
  const auto residual = gaussian(n, 12, 0.3f);
  for (Codec codec : kScaled)
    for (std::uint32_t block : {32u, 128u, 4096u})
      ASSERT_TRUE(check({codec, DType::kF32, n, block, codec == Codec::kTernGrad && block == 128, codec != Codec::kTernGrad,
                         0, 0},
                        values, residual));
  ASSERT_TRUE(check({Codec::kTernGrad, DType::kBf16, n, 128, false, false, 0, 1}, values, residual));
  ASSERT_TRUE(check({Codec::kFp16, DType::kF32, n, 128, false, false, 0, 0}, values, residual));
}

TEST_F(CudaCodec, NonFiniteInputsAreReportedLikeTheCpu) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {1, 77, 5000}) {
    for (Codec codec : testing::kAllCodecs) {
      auto values = gaussian(n, n);
      auto residual = gaussian(n, n + 1, 0.3f);
      values[n - 1] = nan;
      values[n / 2] = -inf;
      ASSERT_TRUE(check({codec, DType::kF32, n, 64, false, false, 0, 0}, values, residual));
      values = gaussian(n, n);
      values[n / 3] = 1e5f;  // overflows fp16 only
      ASSERT_TRUE(check({codec, DType::kF32, n, 64, false, false, 0, 0}, values, residual));
      if (codec_uses_error_feedback(codec)) {
        residual[n / 4] = inf;
        ASSERT_TRUE(check({codec, DType::kF32, n, 64, false, true, 0, 0}, gaussian(n, n), residual));
        values = gaussian(n, n);
        for (std::size_t i = n / 2; i < n; ++i) values[i] = (i & 1) ? 3e38f : -3e38f;  // Σ|x| overflows
        ASSERT_TRUE(check({codec, DType::kF32, n, 32, false, false, 0, 0}, values, residual));
      }
    }
  }
}

TEST_F(CudaCodec, CorruptChunksAreRejectedLikeTheCpu) {
  for (Codec codec : testing::kAllCodecs) {
    for (std::size_t n : {5, 130, 1001}) {
      const auto values = gaussian(n, n);
      EncodeOptions o;
      o.codec = codec;
      o.block_size = 32;
      std::vector<std::uint8_t> chunk(*encoded_size(codec, 32, n));
      ASSERT_TRUE(encode(values.data(), DType::kF32, n, nullptr, o, chunk).is_ok());
      const auto view = *parse_chunk(chunk);
      const std::size_t codes = kChunkHeaderBytes + 4 * view.layout.scale_count;
      for (bool give_header : {true, false}) {
        SCOPED_TRACE(std::string(codec_name(codec)) + " n=" + std::to_string(n) + (give_header ? " host header" : ""));
        check_corrupt(chunk, n, give_header);
        auto bad = chunk;
        bad[3] = 42;  // unknown codec
        check_corrupt(bad, n, give_header);
        bad = chunk;
        bad.push_back(0);  // trailing byte
        check_corrupt(bad, n, give_header);
        if (view.layout.scale_count) {
          bad = chunk;
          bad[kChunkHeaderBytes + 3] |= 0x80;  // negative scale
          check_corrupt(bad, n, give_header);
        }
        if (codec == Codec::kTernGrad || codec == Codec::kTernaryEf) {
          bad = chunk;
          for (std::size_t i = codes; i + 1 < codes + view.layout.code_bytes; i += 2) bad[i] = 0xAA;  // invalid codes
          check_corrupt(bad, n, give_header);
        }
        if (!codec_is_block_scaled(codec)) {
          bad = chunk;
          bad[codes + dtype_size(codec == Codec::kFp32 ? DType::kF32 : DType::kF16) - 1] = 0xFF;  // NaN/Inf value
          bad[codes + dtype_size(codec == Codec::kFp32 ? DType::kF32 : DType::kF16) - 2] = 0xFF;
          check_corrupt(bad, n, give_header);
        }
        if ((n * codec_code_bits(codec)) % 8) {
          bad = chunk;
          bad[codes + view.layout.code_bytes - 1] |= 0x80;  // unused bits
          check_corrupt(bad, n, give_header);
        }
        if (view.layout.payload_bytes > 4 * view.layout.scale_count + view.layout.code_bytes) {
          bad = chunk;
          bad.back() = 1;  // padding
          check_corrupt(bad, n, give_header);
        }
      }
    }
  }
}

TEST_F(CudaCodec, RejectsBadArguments) {
  const std::size_t n = 64;
  const auto values = gaussian(n, 1);
  upload(input_->at(), values.data(), 4 * n);
  const float* d_in = reinterpret_cast<const float*>(input_->at());
  float* d_res = reinterpret_cast<float*>(residual_->at());
  std::vector<std::uint8_t> host_chunk(4096);
  std::vector<float> host_res(n);
  const std::size_t cap = 4096;
  auto same_as_cpu = [&](EncodeOptions o, DType dtype, bool residual, std::size_t capacity) {
    const Status cs = encode(values.data(), dtype, n, residual ? host_res.data() : nullptr, o,
                             std::span(host_chunk).first(capacity));
    const Status gs = gpu::encode_async(*ws_, d_in, dtype, n, residual ? d_res : nullptr, o, chunk_->at(), capacity, stream_);
    EXPECT_FALSE(gs.is_ok());
    if (gs.is_ok()) (void)ws_->finish();
    EXPECT_EQ(cs.to_string(), gs.to_string());
    EXPECT_FALSE(ws_->pending());
  };
  EncodeOptions o;
  same_as_cpu(o, DType::kF32, true, cap);  // terngrad takes no residual
  o.block_size = 100;
  same_as_cpu(o, DType::kF32, false, cap);
  o = EncodeOptions{};
  o.clip = true;
  o.clip_sigmas = -1;
  same_as_cpu(o, DType::kF32, false, cap);
  o = EncodeOptions{};
  same_as_cpu(o, DType::kF32, false, 20);           // output too small
  same_as_cpu(o, static_cast<DType>(9), false, cap);  // unknown dtype

  // Device rules: misaligned tensors, null output, a second operation while one is pending.
  EXPECT_EQ(gpu::encode_async(*ws_, input_->at(2), DType::kF32, n - 1, nullptr, o, chunk_->at(), cap, stream_).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu::encode_async(*ws_, d_in, DType::kF32, n, nullptr, o, nullptr, cap, stream_).code(),
            StatusCode::kInvalidArgument);
  int pageable = 0;
  cuda_ok(cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, ws_->device()));
  if (!pageable) {
    EXPECT_EQ(gpu::encode_async(*ws_, values.data(), DType::kF32, n, nullptr, o, chunk_->at(), cap, stream_).code(),
              StatusCode::kInvalidArgument)
        << "host memory";
  }
  ASSERT_TRUE(gpu::encode_async(*ws_, d_in, DType::kF32, n, nullptr, o, chunk_->at(), cap, stream_).is_ok());
  EXPECT_TRUE(ws_->pending());
  EXPECT_EQ(gpu::encode_async(*ws_, d_in, DType::kF32, n, nullptr, o, chunk_->at(), cap, stream_).code(),
            StatusCode::kInvalidArgument);
  EncodeReport report;
  EXPECT_TRUE(ws_->finish(&report).is_ok());
  EXPECT_EQ(report.bytes, *encoded_size(o.codec, o.block_size, n));
  EXPECT_EQ(ws_->finish().code(), StatusCode::kInvalidArgument) << "nothing pending";

  // Decoders: count mismatch, residual_update of a codec without error feedback.
  std::vector<std::uint8_t> chunk(*encoded_size(o.codec, o.block_size, n));
  ASSERT_TRUE(encode(values.data(), DType::kF32, n, nullptr, o, chunk).is_ok());
  upload(chunk_->at(), chunk.data(), chunk.size());
  const gpu::DeviceChunk dc{chunk_->at(), chunk.size(), chunk.data()};
  std::vector<float> out(n + 1);
  EXPECT_EQ(decode(chunk, out.data(), DType::kF32, n + 1).to_string(),
            gpu::decode(*ws_, dc, out_->at(), DType::kF32, n + 1, stream_).to_string());
  EXPECT_EQ(residual_update(chunk, values.data(), DType::kF32, n, host_res.data()).to_string(),
            gpu::residual_update(*ws_, dc, d_in, DType::kF32, n, d_res, stream_).to_string());
  EXPECT_EQ(gpu::decode_accumulate(*ws_, dc, reinterpret_cast<float*>(out_->at(2)), n, stream_).code(),
            StatusCode::kInvalidArgument)
      << "misaligned accumulator";
}

TEST_F(CudaCodec, MovedFromWorkspaceIsRejected) {
  gpu::Workspace moved = std::move(*ws_);
  EXPECT_EQ(ws_->finish().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu::encode_async(*ws_, nullptr, DType::kF32, 0, nullptr, EncodeOptions{}, chunk_->at(), 64, stream_).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(gpu::encode(moved, nullptr, DType::kF32, 0, nullptr, EncodeOptions{}, chunk_->at(), 64, stream_).is_ok());
}

// Runs everywhere: without a GPU, device_available() must say why, never crash.
TEST(CudaAvailability, ReportsAReasonOrSucceeds) {
  const Status s = gpu::device_available();
  if (!s.is_ok()) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    EXPECT_FALSE(s.message().empty());
    EXPECT_EQ(gpu::Workspace::create().status().code(), StatusCode::kUnavailable);
  }
}

}  // namespace
}  // namespace tern::kernels
