// An owned, uninitialized, 64-byte-aligned byte buffer: what tensors look like when a framework
// allocates them (PyTorch's CPU allocator aligns to 64 bytes), and what the decoders' streaming
// stores need. Move-only; not thread-safe (like std::vector).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace tern {

class AlignedBuffer {
 public:
  static constexpr std::size_t kAlignment = 64;

  AlignedBuffer() = default;
  /// `bytes` bytes (0 allowed: data() is then null). Throws std::bad_alloc when memory is short.
  explicit AlignedBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;  // aligned_alloc's rule
    data_ = static_cast<std::uint8_t*>(std::aligned_alloc(kAlignment, rounded));
    if (!data_) throw std::bad_alloc();
  }
  AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_) {
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
      std::free(data_);
      data_ = other.data_;
      bytes_ = other.bytes_;
      other.data_ = nullptr;
      other.bytes_ = 0;
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  std::uint8_t* data() const noexcept { return data_; }
  float* floats() const noexcept { return reinterpret_cast<float*>(data_); }  // aligned for float
  std::size_t size() const noexcept { return bytes_; }

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace tern
