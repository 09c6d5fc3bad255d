#include "shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace tern::daemon {

Result<std::shared_ptr<SharedMapping>> SharedMapping::map(UniqueFd fd, std::size_t min_bytes, std::size_t max_bytes,
                                                          std::string_view what) {
  const std::string w(what);
  const int seals = ::fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0) return corrupt_data(w + " is not a sealable memfd (" + std::strerror(errno) + ")");
  if ((seals & F_SEAL_SHRINK) == 0) return corrupt_data(w + " is not sealed against shrinking (F_SEAL_SHRINK)");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return corrupt_data(w + ": fstat failed: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return corrupt_data(w + " is not a regular memory file");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < min_bytes || size > max_bytes || size == 0)
    return corrupt_data(w + " is " + std::to_string(size) + " bytes, expected " + std::to_string(min_bytes) +
                        (max_bytes != min_bytes ? " to " + std::to_string(max_bytes) : std::string()));
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED)
    return corrupt_data(w + ": mmap of " + std::to_string(size) + " bytes failed: " + std::strerror(errno));
  return std::shared_ptr<SharedMapping>(new SharedMapping(static_cast<std::uint8_t*>(p), size));
}

SharedMapping::~SharedMapping() { ::munmap(data_, size_); }

Status check_eventfd(int fd, std::string_view what) {
  char link[64];
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
  if (n < 0) return corrupt_data(std::string(what) + ": cannot inspect the descriptor (" + std::strerror(errno) + ")");
  link[n] = '\0';
  if (std::strcmp(link, "anon_inode:[eventfd]") != 0)
    return corrupt_data(std::string(what) + " is not an eventfd (" + link + ")");
  return Status::ok();
}

}  // namespace tern::daemon
