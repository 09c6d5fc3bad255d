// scale_async() of cuda_codec.h: data[i] = data[i] * factor, one correctly rounded fp32
// multiplication per element, as the CPU's `x *= factor` (ternd's mean over a node's sum).
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "tern/kernels/cuda_codec.h"

namespace tern::kernels::cuda {
namespace {

__global__ void scale_kernel(float* data, std::uint64_t count, float factor) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    data[i] = __fmul_rn(data[i], factor);
}

Status launch_error(cudaError_t e) {
  (void)cudaGetLastError();
  return Status(StatusCode::kInternal,
                std::string("scale kernel launch: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

}  // namespace

Status scale_async(float* data, std::size_t count, float factor, Stream stream) {
  if (count == 0) return Status::ok();
  if (data == nullptr) return invalid_argument("scale: null data with a non-zero count");
  if (reinterpret_cast<std::uintptr_t>(data) % alignof(float) != 0)
    return invalid_argument("scale: data is not aligned to 4 bytes");
  cudaPointerAttributes attributes{};
  if (const cudaError_t e = cudaPointerGetAttributes(&attributes, data); e != cudaSuccess) return launch_error(e);
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
    return invalid_argument("scale: data is not device memory");
  constexpr unsigned kThreads = 256;
  const auto blocks = static_cast<unsigned>(std::min<std::size_t>((count + kThreads - 1) / kThreads, 65535));
  scale_kernel<<<blocks, kThreads, 0, stream>>>(data, count, factor);
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return launch_error(e);
  return Status::ok();
}

}  // namespace tern::kernels::cuda
