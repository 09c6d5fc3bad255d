// Shared memory a client hands to the daemon: a memfd, checked and mapped once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tern/common/status.h"
#include "unique_fd.h"

namespace tern::daemon {

/// A MAP_SHARED mapping of a client's memfd; unmapped on destruction. Operations in flight hold a
/// shared_ptr, so freeing an arena (or a client disconnecting) never unmaps memory in use.
class SharedMapping {
 public:
  /// Checks that `fd` is a memfd sealed against shrinking (F_SEAL_SHRINK: the client can never
  /// make our accesses fault) whose size is at least `min_bytes` and at most `max_bytes`, then maps
  /// its whole size read-write. kCorruptData naming what is wrong.
  static Result<std::shared_ptr<SharedMapping>> map(UniqueFd fd, std::size_t min_bytes, std::size_t max_bytes,
                                                    std::string_view what);
  ~SharedMapping();
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  SharedMapping(std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t* data_;
  std::size_t size_;
};

/// kCorruptData unless `fd` is an eventfd (the doorbells must not be pipes or sockets that could
/// block or be something else entirely).
Status check_eventfd(int fd, std::string_view what);

}  // namespace tern::daemon
