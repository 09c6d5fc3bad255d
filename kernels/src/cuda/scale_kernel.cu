// scale_async() of cuda_codec.h: data[i] = data[i] * factor, one correctly rounded fp32
// multiplication per element, as the CPU's `x *= factor` (ternd's mean over a node's sum).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "tern/kernels/cuda_codec.h"
#include "tern/kernels/cuda_support.h"

namespace tern::kernels::cuda {
namespace {

__global__ void scale_kernel(float* data, std::uint64_t count, float factor) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    data[i] = __fmul_rn(data[i], factor);
}

}  // namespace

Status scale_async(float* data, std::size_t count, float factor, Stream stream) {
  if (count == 0) return Status::ok();
  if (data == nullptr) return invalid_argument("scale: null data with a non-zero count");
  if (reinterpret_cast<std::uintptr_t>(data) % alignof(float) != 0)
    return invalid_argument("scale: data is not aligned to 4 bytes");
  cudaPointerAttributes attributes{};
  TERN_CUDA_CHECK(cudaPointerGetAttributes(&attributes, data), "scale: cudaPointerGetAttributes");
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
    return invalid_argument("scale: data is not device memory");
  constexpr unsigned kThreads = 256;
  const auto blocks = static_cast<unsigned>(std::min<std::size_t>((count + kThreads - 1) / kThreads, 65535));
  scale_kernel<<<blocks, kThreads, 0, stream>>>(data, count, factor);
  TERN_CUDA_CHECK(cudaGetLastError(), "scale kernel launch");
  return Status::ok();
}

}  // namespace tern::kernels::cuda
