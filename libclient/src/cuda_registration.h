// libtern's view of CUDA device memory (TERN_HAVE_CUDA builds; otherwise nothing is device memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "tern/common/status.h"

namespace tern::client {

struct CudaAllocation {
  std::uintptr_t base = 0;          ///< start of the cudaMalloc allocation holding the pointer
  std::size_t bytes = 0;            ///< its size
  int device = 0;
  std::vector<std::uint8_t> handle;  ///< cudaIpcMemHandle_t of the allocation
};

/// The allocation holding `ptr` if it is CUDA device memory; nullopt for anything else (host
/// memory, or no CUDA/driver/GPU at all).
Result<std::optional<CudaAllocation>> cuda_allocation_of(const void* ptr);

}  // namespace tern::client
