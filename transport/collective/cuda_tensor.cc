#include "tern/transport/cuda_tensor.h"

#include <string>
#include <vector>

#if TERN_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "tern/kernels/cuda_codec.h"
#include "tern/kernels/cuda_support.h"
#endif

namespace tern::collective {

#if TERN_HAVE_CUDA

struct CudaScratch::Impl {
  int device = 0;
  // Destroyed in reverse order: the workspace (which waits for its operation) before the buffers
  // and the stream it used.
  kernels::cuda::UniqueStream stream;
  kernels::cuda::GrowingDeviceBuffer chunk, residual;
  std::vector<std::uint8_t> narrow_values;  // fp16/bf16 values on their way to widen_to_f32
  kernels::cuda::Workspace workspace;

  Impl(int d, kernels::cuda::UniqueStream s, kernels::cuda::Workspace ws)
      : device(d), stream(std::move(s)), workspace(std::move(ws)) {}
  ~Impl() { (void)cudaSetDevice(device); }  // runs before the members are freed on that device

  Status use() {
    TERN_CUDA_CHECK(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
    return Status::ok();
  }
  Status wait(const char* what) {
    TERN_CUDA_CHECK(cudaStreamSynchronize(stream.get()), what);
    return Status::ok();
  }
};

bool cuda_tensors_built() noexcept { return true; }

CudaScratch::CudaScratch(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
CudaScratch::~CudaScratch() = default;
int CudaScratch::device() const noexcept { return impl_->device; }

Result<std::unique_ptr<CudaScratch>> CudaScratch::create(int device) {
  int devices = 0;
  TERN_CUDA_CHECK(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  if (device < 0 || device >= devices)
    return invalid_argument("GPU " + std::to_string(device) + " does not exist (" + std::to_string(devices) + " GPUs)");
  TERN_CUDA_CHECK(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  TERN_CHECK(kernels::cuda::device_available());
  TERN_ASSIGN_OR_RETURN(kernels::cuda::UniqueStream stream, kernels::cuda::make_stream());
  TERN_ASSIGN_OR_RETURN(kernels::cuda::Workspace workspace, kernels::cuda::Workspace::create());
  auto impl = std::make_unique<Impl>(device, std::move(stream), std::move(workspace));
  return std::make_unique<CudaScratch>(std::move(impl));
}

namespace {

class CudaTensor final : public Tensor {
 public:
  CudaTensor(void* data, kernels::DType dtype, std::size_t count, CudaScratch::Impl& scratch)
      : data_(static_cast<std::uint8_t*>(data)),
        dtype_(dtype),
        count_(count),
        elem_(kernels::dtype_size(dtype)),
        s_(scratch) {}

  kernels::DType dtype() const noexcept override { return dtype_; }
  std::size_t count() const noexcept override { return count_; }
  const void* address() const noexcept override { return data_; }

  Status encode(std::size_t begin, std::size_t n, float* residual, const kernels::EncodeOptions& options,
                std::span<std::uint8_t> out) override {
    TERN_CHECK(s_.use());
    TERN_ASSIGN_OR_RETURN(void* chunk, s_.chunk.reserve(out.size(), "an encoded chunk"));
    float* device_residual = nullptr;
    if (residual) {
      TERN_ASSIGN_OR_RETURN(void* r, s_.residual.reserve(n * sizeof(float), "an error-feedback residual"));
      device_residual = static_cast<float*>(r);
      TERN_CUDA_CHECK(cudaMemcpyAsync(device_residual, residual, n * sizeof(float), cudaMemcpyHostToDevice, stream()),
                      "copying an error-feedback residual to the GPU");
    }
    TERN_CHECK(kernels::cuda::encode_async(s_.workspace, at(begin), dtype_, n, device_residual, options, chunk,
                                           out.size(), stream()));
    // The copy follows the kernel in stream order, so one wait covers both (on an encode error
    // the copied bytes are unspecified, as the CPU's, and never sent).
    TERN_CUDA_CHECK(cudaMemcpyAsync(out.data(), chunk, out.size(), cudaMemcpyDeviceToHost, stream()),
                    "copying an encoded chunk from the GPU");
    TERN_CHECK(s_.workspace.finish());
    TERN_CHECK(s_.wait("copying an encoded chunk from the GPU"));
    if (!residual) return Status::ok();
    kernels::cuda::DeviceChunk encoded{chunk, out.size(), out.data()};  // its header, now on the host
    TERN_CHECK(
        kernels::cuda::residual_update_async(s_.workspace, encoded, at(begin), dtype_, n, device_residual, stream()));
    TERN_CUDA_CHECK(cudaMemcpyAsync(residual, device_residual, n * sizeof(float), cudaMemcpyDeviceToHost, stream()),
                    "copying an error-feedback residual from the GPU");
    TERN_CHECK(s_.workspace.finish());
    return s_.wait("copying an error-feedback residual from the GPU");
  }

  Status widen(std::size_t begin, std::size_t n, float* out) override {
    TERN_CHECK(s_.use());
    void* host = out;
    if (dtype_ != kernels::DType::kF32) {
      s_.narrow_values.resize(n * elem_);
      host = s_.narrow_values.data();
    }
    TERN_CUDA_CHECK(cudaMemcpyAsync(host, at(begin), n * elem_, cudaMemcpyDeviceToHost, stream()),
                    "copying a shard from the GPU");
    TERN_CHECK(s_.wait("copying a shard from the GPU"));
    if (host != out) kernels::widen_to_f32(host, dtype_, n, out);
    return Status::ok();
  }

  Status decode(std::span<const std::uint8_t> chunk, std::size_t begin, std::size_t n) override {
    TERN_CHECK(s_.use());
    TERN_ASSIGN_OR_RETURN(void* device_chunk, s_.chunk.reserve(chunk.size(), "a chunk to decode"));
    TERN_CUDA_CHECK(cudaMemcpyAsync(device_chunk, chunk.data(), chunk.size(), cudaMemcpyHostToDevice, stream()),
                    "copying a chunk to the GPU");
    const kernels::cuda::DeviceChunk on_device{device_chunk, chunk.size(), chunk.data()};
    TERN_CHECK(kernels::cuda::decode_async(s_.workspace, on_device, at(begin), dtype_, n, stream()));
    return s_.workspace.finish();
  }

 private:
  std::uint8_t* at(std::size_t element) const { return data_ + element * elem_; }
  cudaStream_t stream() const { return s_.stream.get(); }

  std::uint8_t* data_;
  kernels::DType dtype_;
  std::size_t count_;
  std::size_t elem_;
  CudaScratch::Impl& s_;
};

}  // namespace

Result<std::unique_ptr<Tensor>> cuda_tensor(void* device_data, kernels::DType dtype, std::size_t count,
                                            CudaScratch& scratch) {
  if (count != 0) {
    cudaPointerAttributes attributes{};
    TERN_CUDA_CHECK(cudaPointerGetAttributes(&attributes, device_data), "cudaPointerGetAttributes");
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
      return invalid_argument("a GPU tensor's pointer is not device memory");
    if (attributes.device != scratch.device())
      return invalid_argument("a GPU tensor on GPU " + std::to_string(attributes.device) +
                              " with scratch buffers on GPU " + std::to_string(scratch.device()));
  }
  return std::unique_ptr<Tensor>(std::make_unique<CudaTensor>(device_data, dtype, count, scratch.impl()));
}

#else  // !TERN_HAVE_CUDA

struct CudaScratch::Impl {
  int device = 0;
};

bool cuda_tensors_built() noexcept { return false; }
CudaScratch::CudaScratch(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
CudaScratch::~CudaScratch() = default;
int CudaScratch::device() const noexcept { return impl_->device; }

Result<std::unique_ptr<CudaScratch>> CudaScratch::create(int) {
  return unavailable("this build of tern has no CUDA support (configured with TERN_CUDA=OFF or without nvcc)");
}

Result<std::unique_ptr<Tensor>> cuda_tensor(void*, kernels::DType, std::size_t, CudaScratch&) {
  return unavailable("this build of tern has no CUDA support");
}

#endif

}  // namespace tern::collective
