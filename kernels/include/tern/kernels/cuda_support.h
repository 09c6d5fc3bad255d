// CUDA runtime errors as tern Statuses, and RAII for the runtime handles tern keeps (device
// memory, streams). For code built with the CUDA toolkit (TERN_HAVE_CUDA); header-only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tern/common/status.h"

namespace tern::kernels::cuda {

/// `what: cudaErrorName (description)`: kUnavailable when no usable GPU, driver or memory is
/// there (so callers can report "no GPU" rather than a bug), kInternal otherwise. Clears the
/// runtime's last (non-sticky) error so that it does not resurface in an unrelated later check.
inline Status cuda_status(cudaError_t error, std::string_view what) {
  (void)cudaGetLastError();
  std::string msg(what);
  msg += ": ";
  msg += cudaGetErrorName(error);
  msg += " (";
  msg += cudaGetErrorString(error);
  msg += ")";
  switch (error) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorDevicesUnavailable:
    case cudaErrorMemoryAllocation:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
      return unavailable(std::move(msg));
    default:
      return internal_error(std::move(msg));
  }
}

/// Returns cuda_status(error, what) from the enclosing function when `expr` is not cudaSuccess.
#define TERN_CUDA_CHECK(expr, what)                                                                         \
  do {                                                                                                      \
    const cudaError_t tern_cuda_error_ = (expr);                                                            \
    if (tern_cuda_error_ != cudaSuccess) return ::tern::kernels::cuda::cuda_status(tern_cuda_error_, what); \
  } while (0)

struct StreamDeleter {
  void operator()(cudaStream_t s) const noexcept { (void)cudaStreamDestroy(s); }
};
/// A CUDA stream, destroyed with its owner.
using UniqueStream = std::unique_ptr<CUstream_st, StreamDeleter>;

/// A non-blocking stream on the current device.
inline Result<UniqueStream> make_stream() {
  cudaStream_t s = nullptr;
  TERN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "creating a CUDA stream");
  return UniqueStream(s);
}

/// Device memory on the current device that grows to the largest size asked for and is kept
/// (contents are not preserved when it grows). Not thread-safe.
class GrowingDeviceBuffer {
 public:
  Result<std::uint8_t*> reserve(std::size_t bytes, std::string_view purpose) {
    if (bytes > capacity_) {
      data_.reset();
      capacity_ = 0;
      void* p = nullptr;
      TERN_CUDA_CHECK(cudaMalloc(&p, bytes),
                      "allocating " + std::to_string(bytes) + " bytes of GPU memory for " + std::string(purpose));
      data_.reset(p);
      capacity_ = bytes;
    }
    return static_cast<std::uint8_t*>(data_.get());
  }

 private:
  struct Free {
    void operator()(void* p) const noexcept { (void)cudaFree(p); }
  };
  std::unique_ptr<void, Free> data_;
  std::size_t capacity_ = 0;
};

}  // namespace tern::kernels::cuda
