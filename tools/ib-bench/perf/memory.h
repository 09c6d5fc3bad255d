// Message buffers in host or CUDA device memory.
#pragma once

#include <cstddef>

#include "perf/options.h"
#include "tern/common/status.h"

namespace tern::ibbench {

/// Whether this binary was built with the CUDA runtime (needed for --mem cuda).
bool built_with_cuda();

/// One buffer, page-aligned host memory or cudaMalloc'd device memory. Move-only.
class Buffer {
 public:
  /// kUnavailable for CUDA memory in a build without CUDA or on a machine without a usable GPU
  /// (cudaGetDeviceCount fails: no driver, no device), naming the reason.
  static Result<Buffer> allocate(MemoryKind kind, std::size_t bytes);
  /// No memory (a placeholder to assign to).
  Buffer() noexcept : kind_(MemoryKind::kHost), data_(nullptr), bytes_(0) {}

  Buffer(Buffer&& other) noexcept : kind_(other.kind_), data_(other.data_), bytes_(other.bytes_) {
    other.data_ = nullptr;
  }
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return bytes_; }
  MemoryKind kind() const noexcept { return kind_; }

 private:
  Buffer(MemoryKind kind, void* data, std::size_t bytes) noexcept : kind_(kind), data_(data), bytes_(bytes) {}
  void release() noexcept;
  MemoryKind kind_;
  void* data_;
  std::size_t bytes_;
};

}  // namespace tern::ibbench
