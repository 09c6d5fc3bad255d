#include "gpu_local_reduce.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#if TERN_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "tern/kernels/cuda_codec.h"
#include "tern/kernels/cuda_support.h"
#endif

namespace tern::daemon {

#if TERN_HAVE_CUDA

namespace {

namespace gpu = kernels::cuda;

// Pieces bound the scratch memory (a piece of the input staged from another GPU, its cast chunk)
// to a few tens of MiB whatever the bucket size.
constexpr std::size_t kPieceElements = std::size_t{1} << 22;

using gpu::GrowingDeviceBuffer;
using gpu::UniqueStream;

// The cast codec of a dtype: encoding with it is exact (the values themselves, widened or not).
kernels::EncodeOptions cast_options(kernels::DType dtype) {
  kernels::EncodeOptions o;
  o.codec = dtype == kernels::DType::kF32   ? kernels::Codec::kFp32
            : dtype == kernels::DType::kF16 ? kernels::Codec::kFp16
                                            : kernels::Codec::kBf16;
  return o;
}

}  // namespace

struct GpuLocalReduce::Impl {
  int device = 0;
  UniqueStream stream;
  GrowingDeviceBuffer acc, stage, chunk;
  float* summed = nullptr;  // the last sum(): acc's memory
  std::unique_ptr<collective::CudaScratch> engine_scratch;
  gpu::Workspace workspace;  // last: destroyed (waiting for its operation) before the buffers

  Impl(int d, UniqueStream s, gpu::Workspace ws) : device(d), stream(std::move(s)), workspace(std::move(ws)) {}
  ~Impl() { (void)cudaSetDevice(device); }

  cudaStream_t s() const { return stream.get(); }

  // `src` (n elements of dtype, on this device) as a cast chunk in `chunk`.
  Result<gpu::DeviceChunk> encode_cast(const void* src, kernels::DType dtype, std::size_t n) {
    const kernels::EncodeOptions o = cast_options(dtype);
    TERN_ASSIGN_OR_RETURN(const std::size_t bytes, kernels::encoded_size(o.codec, o.block_size, n));
    TERN_ASSIGN_OR_RETURN(std::uint8_t * c, chunk.reserve(bytes, "a cast chunk of the local sum"));
    TERN_CHECK(gpu::encode_async(workspace, src, dtype, n, nullptr, o, c, bytes, s()));
    TERN_CHECK(workspace.finish());
    return gpu::DeviceChunk{c, bytes, nullptr};  // the decoders read the header back themselves
  }
};

GpuLocalReduce::GpuLocalReduce(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuLocalReduce::~GpuLocalReduce() = default;
int GpuLocalReduce::device() const noexcept { return impl_->device; }
collective::CudaScratch& GpuLocalReduce::engine_scratch() { return *impl_->engine_scratch; }

Result<std::unique_ptr<GpuLocalReduce>> GpuLocalReduce::create(int device) {
  TERN_ASSIGN_OR_RETURN(auto engine_scratch, collective::CudaScratch::create(device));  // checks the GPU
  TERN_CUDA_CHECK(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  TERN_ASSIGN_OR_RETURN(UniqueStream stream, gpu::make_stream());
  TERN_ASSIGN_OR_RETURN(gpu::Workspace workspace, gpu::Workspace::create());
  auto impl = std::make_unique<Impl>(device, std::move(stream), std::move(workspace));
  impl->engine_scratch = std::move(engine_scratch);
  return std::unique_ptr<GpuLocalReduce>(new GpuLocalReduce(std::move(impl)));
}

Result<float*> GpuLocalReduce::sum(std::span<const Buffer> inputs, kernels::DType dtype, std::size_t count) {
  Impl& m = *impl_;
  TERN_CUDA_CHECK(cudaSetDevice(m.device), "cudaSetDevice");
  TERN_ASSIGN_OR_RETURN(std::uint8_t * acc_bytes,
                        m.acc.reserve(std::max<std::size_t>(count, 1) * sizeof(float), "the local sum"));
  auto* acc = reinterpret_cast<float*>(acc_bytes);
  m.summed = nullptr;
  const std::size_t elem = kernels::dtype_size(dtype);
  for (std::size_t begin = 0; begin < count; begin += kPieceElements) {
    const std::size_t n = std::min(kPieceElements, count - begin);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const void* src = static_cast<const std::uint8_t*>(inputs[i].data) + begin * elem;
      if (inputs[i].device != m.device) {
        TERN_ASSIGN_OR_RETURN(std::uint8_t * staged,
                              m.stage.reserve(kPieceElements * elem, "a piece of another GPU's buffer"));
        TERN_CUDA_CHECK(
            cudaMemcpyPeerAsync(staged, m.device, src, inputs[i].device, n * elem, m.s()),
            "copying local rank " + std::to_string(i) + "'s buffer from GPU " + std::to_string(inputs[i].device));
        src = staged;
      }
      TERN_ASSIGN_OR_RETURN(const gpu::DeviceChunk chunk, m.encode_cast(src, dtype, n));
      if (i == 0) {
        TERN_CHECK(gpu::decode_async(m.workspace, chunk, acc + begin, kernels::DType::kF32, n, m.s()));
      } else {
        TERN_CHECK(gpu::decode_accumulate_async(m.workspace, chunk, acc + begin, n, m.s()));
      }
      TERN_CHECK(m.workspace.finish());
    }
  }
  m.summed = acc;
  return acc;
}

Status GpuLocalReduce::finish(collective::ReduceOp op, int nranks, kernels::DType dtype, std::size_t count,
                              std::span<const Buffer> outputs) {
  Impl& m = *impl_;
  float* acc = m.summed;
  if (acc == nullptr) return internal_error("GpuLocalReduce::finish() without a successful sum()");
  TERN_CUDA_CHECK(cudaSetDevice(m.device), "cudaSetDevice");
  if (op == collective::ReduceOp::kMean)  // the host's scale_for_mean, bit for bit
    TERN_CHECK(gpu::scale_async(acc, count, 1.0f / static_cast<float>(nranks), m.s()));
  const std::size_t elem = kernels::dtype_size(dtype);
  for (std::size_t begin = 0; begin < count; begin += kPieceElements) {
    const std::size_t n = std::min(kPieceElements, count - begin);
    // An fp32 chunk decoded into the dtype narrows with round-to-nearest-even and reports overflow.
    TERN_ASSIGN_OR_RETURN(const gpu::DeviceChunk chunk, m.encode_cast(acc + begin, kernels::DType::kF32, n));
    for (std::size_t j = 0; j < outputs.size(); ++j) {
      void* dst = static_cast<std::uint8_t*>(outputs[j].data) + begin * elem;
      void* target = dst;
      if (outputs[j].device != m.device) {
        TERN_ASSIGN_OR_RETURN(target, m.stage.reserve(kPieceElements * elem, "a piece of another GPU's buffer"));
      }
      TERN_CHECK(gpu::decode_async(m.workspace, chunk, target, dtype, n, m.s()));
      TERN_CHECK(m.workspace.finish());
      if (target != dst)
        TERN_CUDA_CHECK(
            cudaMemcpyPeerAsync(dst, outputs[j].device, target, m.device, n * elem, m.s()),
            "copying the result to local rank " + std::to_string(j) + " on GPU " + std::to_string(outputs[j].device));
    }
  }
  TERN_CUDA_CHECK(cudaStreamSynchronize(m.s()), "waiting for the results to reach the trainers' GPUs");
  return Status::ok();
}

#else  // !TERN_HAVE_CUDA

struct GpuLocalReduce::Impl {};

GpuLocalReduce::GpuLocalReduce(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuLocalReduce::~GpuLocalReduce() = default;
int GpuLocalReduce::device() const noexcept { return 0; }
collective::CudaScratch& GpuLocalReduce::engine_scratch() { std::abort(); }  // create() never succeeds

Result<std::unique_ptr<GpuLocalReduce>> GpuLocalReduce::create(int) {
  return unavailable("this ternd was built without CUDA support");
}
Result<float*> GpuLocalReduce::sum(std::span<const Buffer>, kernels::DType, std::size_t) {
  return unavailable("no CUDA support");
}
Status GpuLocalReduce::finish(collective::ReduceOp, int, kernels::DType, std::size_t, std::span<const Buffer>) {
  return unavailable("no CUDA support");
}

#endif

}  // namespace tern::daemon
