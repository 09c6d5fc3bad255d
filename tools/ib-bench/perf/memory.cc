#include "perf/memory.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#if IB_BENCH_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tern::ibbench {

bool built_with_cuda() { return IB_BENCH_HAVE_CUDA != 0; }

Result<Buffer> Buffer::allocate(MemoryKind kind, std::size_t bytes) {
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 4095) / 4096 * 4096;
  if (kind == MemoryKind::kHost) {
    void* p = std::aligned_alloc(4096, rounded);
    if (p == nullptr) return unavailable(fmt::format("cannot allocate {} bytes of host memory", rounded));
    std::memset(p, 0xa5, rounded);  // touch every page before measuring
    return Buffer(kind, p, bytes);
  }
#if IB_BENCH_HAVE_CUDA
  int count = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0)
    return unavailable(fmt::format("--mem cuda: no usable GPU (cudaGetDeviceCount: {})",
                                   e == cudaSuccess ? "0 devices" : cudaGetErrorString(e)));
  void* p = nullptr;
  if (const cudaError_t e = cudaMalloc(&p, rounded); e != cudaSuccess)
    return unavailable(fmt::format("--mem cuda: cudaMalloc of {} bytes failed: {}", rounded, cudaGetErrorString(e)));
  (void)cudaMemset(p, 0xa5, rounded);
  return Buffer(kind, p, bytes);
#else
  return unavailable(
      "--mem cuda: this ib-bench was built without the CUDA runtime (rebuild with nvcc present, TERN_CUDA=ON)");
#endif
}

void Buffer::release() noexcept {
  if (data_ == nullptr) return;
  if (kind_ == MemoryKind::kHost) {
    std::free(data_);
  } else {
#if IB_BENCH_HAVE_CUDA
    (void)cudaFree(data_);
#endif
  }
  data_ = nullptr;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    kind_ = other.kind_;
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.data_ = nullptr;
  }
  return *this;
}

Buffer::~Buffer() { release(); }

}  // namespace tern::ibbench
