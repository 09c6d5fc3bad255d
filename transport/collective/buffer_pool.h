// Internal: recycles the byte buffers of pipeline chunks across chunks and operations.
//
// Why: a chunk buffer is hundreds of KiB (512 KiB for an fp32 chunk), above glibc's mmap
// threshold, so allocating a fresh one per chunk costs a page fault per 4 KiB page, a zeroing
// pass and an munmap: on the fp32 codec that was more CPU than the codec itself, and on a node
// whose ranks share few cores it delayed every rank. The pool keeps the buffers one operation
// used (bounded by the pipeline window) for the next.
//
// Not thread-safe: owned by a Communicator and used only by the thread running its allreduce
// (transport callbacks run inside that thread's progress() calls).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tern::collective {

class BufferPool {
 public:
  /// At most `max_buffers` idle buffers are kept; more are freed.
  explicit BufferPool(std::size_t max_buffers = 256) : max_buffers_(max_buffers) {}

  /// A buffer of `bytes` bytes with unspecified contents.
  std::vector<std::uint8_t> take(std::size_t bytes) {
    // The most recently returned buffer that is already large enough: warm in cache, no growth.
    for (std::size_t i = idle_.size(); i-- > 0;) {
      if (idle_[i].capacity() >= bytes) {
        std::vector<std::uint8_t> buffer = std::move(idle_[i]);
        idle_[i] = std::move(idle_.back());
        idle_.pop_back();
        buffer.resize(bytes);  // zero-fills only bytes beyond its previous size
        return buffer;
      }
    }
    return std::vector<std::uint8_t>(bytes);
  }

  /// Returns `buffer` to the pool and leaves it empty.
  void recycle(std::vector<std::uint8_t>& buffer) {
    if (buffer.capacity() != 0 && idle_.size() < max_buffers_) idle_.push_back(std::move(buffer));
    buffer = {};
  }

  std::size_t idle_buffers() const { return idle_.size(); }

 private:
  std::size_t max_buffers_;
  std::vector<std::vector<std::uint8_t>> idle_;
};

}  // namespace tern::collective
