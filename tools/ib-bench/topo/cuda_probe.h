// CUDA device index per PCI bus id, from the CUDA runtime (empty in builds without CUDA or on
// machines without a driver or GPU: cudaGetDeviceCount fails there).
#pragma once

#include <map>
#include <string>

namespace tern::ibbench {

/// "0000:07:00.0" (lower case) -> CUDA device index.
std::map<std::string, int> cuda_devices_by_busid();

}  // namespace tern::ibbench
