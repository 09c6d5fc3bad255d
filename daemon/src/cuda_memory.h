// GPU buffers of trainers: CUDA IPC handles opened once per registration (TERN_HAVE_CUDA builds).
// A group with one local trainer runs the engine on the mapped buffer in place (GroupState::
// execute_on_gpu). With several, the daemon stages each GPU buffer through host memory around the
// allreduce (copy in before the local sum, copy the result back after narrowing). Either way the
// arithmetic is the host path's, bit for bit, so GPU and host trainers of one group get the same
// bits. Without CUDA every call is kUnavailable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "tern/common/aligned_buffer.h"
#include "tern/common/status.h"

namespace tern::daemon {

/// Whether this ternd was built with CUDA support.
bool cuda_built() noexcept;

/// A trainer's device allocation, mapped into the daemon (cudaIpcOpenMemHandle); closed on
/// destruction. Thread-safe copies (each sets the device first).
class CudaMapping {
 public:
  /// `handle` is a cudaIpcMemHandle_t (64 bytes) of an allocation of `bytes` on `device`.
  static Result<std::shared_ptr<CudaMapping>> open(std::span<const std::uint8_t> handle, std::size_t bytes,
                                                   int device);
  ~CudaMapping();
  CudaMapping(const CudaMapping&) = delete;
  CudaMapping& operator=(const CudaMapping&) = delete;

  std::size_t size() const noexcept { return bytes_; }
  int device() const noexcept { return device_; }
  /// The device address `offset` bytes into the allocation (offset <= size(), checked by the caller).
  void* device_pointer(std::size_t offset) const noexcept { return static_cast<char*>(base_) + offset; }
  Status copy_to_host(std::size_t offset, void* dst, std::size_t n) const;
  Status copy_from_host(std::size_t offset, const void* src, std::size_t n) const;

 private:
  CudaMapping(void* base, std::size_t bytes, int device) : base_(base), bytes_(bytes), device_(device) {}
  void* base_;
  std::size_t bytes_;
  int device_;
};

/// Host memory a group stages one member's GPU buffer through, kept across operations: page-locked
/// (cudaMallocHost) so that the copies run at the link's speed without a bounce through pageable
/// memory; ordinary 64-byte-aligned memory where pinning fails (no device, RLIMIT_MEMLOCK) or
/// without CUDA. Grows, never shrinks. Not thread-safe: the executor of a group's operation (one
/// at a time) uses it.
class HostStaging {
 public:
  /// At least `bytes` bytes (the previous contents are not kept when it grows).
  Result<std::uint8_t*> reserve(std::size_t bytes);
  bool pinned() const noexcept { return pinned_ != nullptr; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct FreePinned {
    void operator()(std::uint8_t* p) const noexcept;
  };
  std::unique_ptr<std::uint8_t, FreePinned> pinned_;  // cudaMallocHost'ed, or null
  AlignedBuffer unpinned_;                            // the fallback
  std::size_t capacity_ = 0;
};

}  // namespace tern::daemon
