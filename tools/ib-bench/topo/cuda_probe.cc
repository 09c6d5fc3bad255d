#include "topo/cuda_probe.h"

#include <cctype>

#if IB_BENCH_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tern::ibbench {

std::map<std::string, int> cuda_devices_by_busid() {
  std::map<std::string, int> out;
#if IB_BENCH_HAVE_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return out;
  for (int i = 0; i < count; ++i) {
    char busid[32] = {};
    if (cudaDeviceGetPCIBusId(busid, sizeof busid, i) != cudaSuccess) continue;
    std::string id(busid);
    for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // CUDA prints an 8-digit domain ("00000000:07:00.0"); hwloc uses 4.
    if (id.size() == 16) id = id.substr(4);
    out[id] = i;
  }
#endif
  return out;
}

}  // namespace tern::ibbench
