#include "cuda_registration.h"

#include <cstring>
#include <string>

#if TERN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tern::client {

#if TERN_HAVE_CUDA

Result<std::optional<CudaAllocation>> cuda_allocation_of(const void* ptr) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or GPU, or not a CUDA pointer: host memory
    return std::optional<CudaAllocation>();
  }
  if (attr.type != cudaMemoryTypeDevice) return std::optional<CudaAllocation>();
  // The IPC handle maps the whole allocation: find where `ptr` sits in it (driver entry point, so
  // libtern never links libcuda).
  using GetRange = int (*)(unsigned long long*, std::size_t*, unsigned long long);
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found{};
  if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess || fn == nullptr)
    return unavailable("cannot resolve cuMemGetAddressRange in the CUDA driver");
  unsigned long long base = 0;
  std::size_t size = 0;
  if (reinterpret_cast<GetRange>(fn)(&base, &size, reinterpret_cast<std::uintptr_t>(ptr)) != 0)
    return invalid_argument("cuMemGetAddressRange failed for a device pointer");
  cudaIpcMemHandle_t h;
  if (cudaError_t e = cudaIpcGetMemHandle(&h, reinterpret_cast<void*>(base)); e != cudaSuccess) {
    (void)cudaGetLastError();
    return invalid_argument(std::string("cudaIpcGetMemHandle: ") + cudaGetErrorString(e) +
                            " (memory from cudaMalloc is required; pools and VMM allocations cannot be shared)");
  }
  CudaAllocation a;
  a.base = static_cast<std::uintptr_t>(base);
  a.bytes = size;
  a.device = attr.device;
  a.handle.resize(sizeof h);
  std::memcpy(a.handle.data(), &h, sizeof h);
  return std::optional<CudaAllocation>(std::move(a));
}

#else

Result<std::optional<CudaAllocation>> cuda_allocation_of(const void*) { return std::optional<CudaAllocation>(); }

#endif

}  // namespace tern::client
