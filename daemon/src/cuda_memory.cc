#include "cuda_memory.h"

#include <cstring>
#include <new>
#include <string>

#if TERN_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "tern/kernels/cuda_support.h"
#endif

namespace tern::daemon {

#if TERN_HAVE_CUDA

using kernels::cuda::cuda_status;

bool cuda_built() noexcept { return true; }

Result<std::shared_ptr<CudaMapping>> CudaMapping::open(std::span<const std::uint8_t> handle, std::size_t bytes,
                                                       int device) {
  if (handle.size() != sizeof(cudaIpcMemHandle_t)) return invalid_argument("CUDA IPC handle has the wrong size");
  int devices = 0;
  if (cudaError_t e = cudaGetDeviceCount(&devices); e != cudaSuccess) return cuda_status(e, "cudaGetDeviceCount");
  if (device < 0 || device >= devices)
    return invalid_argument("CUDA device " + std::to_string(device) + " does not exist here (" +
                            std::to_string(devices) + " devices)");
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) return cuda_status(e, "cudaSetDevice");
  cudaIpcMemHandle_t h;
  std::memcpy(&h, handle.data(), sizeof h);
  void* base = nullptr;
  if (cudaError_t e = cudaIpcOpenMemHandle(&base, h, cudaIpcMemLazyEnablePeerAccess); e != cudaSuccess)
    return cuda_status(e, "cudaIpcOpenMemHandle of the trainer's buffer");
  return std::shared_ptr<CudaMapping>(new CudaMapping(base, bytes, device));
}

CudaMapping::~CudaMapping() {
  if (cudaSetDevice(device_) == cudaSuccess) (void)cudaIpcCloseMemHandle(base_);
}

Status CudaMapping::copy_to_host(std::size_t offset, void* dst, std::size_t n) const {
  if (cudaError_t e = cudaSetDevice(device_); e != cudaSuccess) return cuda_status(e, "cudaSetDevice");
  if (cudaError_t e = cudaMemcpy(dst, static_cast<const char*>(base_) + offset, n, cudaMemcpyDeviceToHost);
      e != cudaSuccess)
    return cuda_status(e, "copying a trainer's GPU buffer to the host");
  return Status::ok();
}

Status CudaMapping::copy_from_host(std::size_t offset, const void* src, std::size_t n) const {
  if (cudaError_t e = cudaSetDevice(device_); e != cudaSuccess) return cuda_status(e, "cudaSetDevice");
  if (cudaError_t e = cudaMemcpy(static_cast<char*>(base_) + offset, src, n, cudaMemcpyHostToDevice); e != cudaSuccess)
    return cuda_status(e, "copying the result into a trainer's GPU buffer");
  return Status::ok();
}

#else  // !TERN_HAVE_CUDA

bool cuda_built() noexcept { return false; }

Result<std::shared_ptr<CudaMapping>> CudaMapping::open(std::span<const std::uint8_t>, std::size_t, int) {
  return unavailable("this ternd was built without CUDA support: GPU buffers cannot be registered");
}
CudaMapping::~CudaMapping() = default;
Status CudaMapping::copy_to_host(std::size_t, void*, std::size_t) const { return unavailable("no CUDA support"); }
Status CudaMapping::copy_from_host(std::size_t, const void*, std::size_t) const {
  return unavailable("no CUDA support");
}

#endif

namespace {

// Page-locked memory, or nullptr (no CUDA, no device, or the memlock limit).
std::uint8_t* allocate_pinned(std::size_t bytes) noexcept {
#if TERN_HAVE_CUDA
  void* p = nullptr;
  if (cudaMallocHost(&p, bytes) == cudaSuccess) return static_cast<std::uint8_t*>(p);
  (void)cudaGetLastError();
#else
  (void)bytes;
#endif
  return nullptr;
}

}  // namespace

void HostStaging::FreePinned::operator()(std::uint8_t* p) const noexcept {
#if TERN_HAVE_CUDA
  (void)cudaFreeHost(p);
#else
  (void)p;  // allocate_pinned never succeeds without CUDA
#endif
}

Result<std::uint8_t*> HostStaging::reserve(std::size_t bytes) {
  if (bytes <= capacity_ && capacity_ > 0) return pinned_ ? pinned_.get() : unpinned_.data();
  pinned_.reset();
  unpinned_ = AlignedBuffer();
  capacity_ = 0;
  const std::size_t n = bytes == 0 ? 1 : bytes;
  pinned_.reset(allocate_pinned(n));
  if (!pinned_) {
    try {
      unpinned_ = AlignedBuffer(n);
    } catch (const std::bad_alloc&) {
      return unavailable("cannot allocate " + std::to_string(bytes) + " bytes of host staging for a GPU buffer");
    }
  }
  capacity_ = n;
  return pinned_ ? pinned_.get() : unpinned_.data();
}

}  // namespace tern::daemon
