// Internal: the Status a decoder reports from its tallies. Shared by the CPU (codec.cc) and CUDA
// (cuda/cuda_codec.cu) entry points so that both say exactly the same thing.
#pragma once

#include <cstddef>
#include <string>

#include "tern/common/status.h"
#include "tern/kernels/codec.h"

namespace tern::kernels {

inline Status decode_tally_status(std::size_t invalid_codes, std::size_t overflows, DType out_dtype) {
  if (invalid_codes)
    return corrupt_data("chunk holds " + std::to_string(invalid_codes) + " invalid code" +
                        (invalid_codes == 1 ? "" : "s") + " (ternary 0b10, or NaN/Inf in a cast codec)");
  if (overflows)
    return non_finite(std::to_string(overflows) + " decoded value" + (overflows == 1 ? "" : "s") + " overflow " +
                      std::string(dtype_name(out_dtype)));
  return Status::ok();
}

}  // namespace tern::kernels
