// Placeholder until the avx512 kernels land: the dispatcher falls back to the scalar reference.
#include "cpu_kernels.h"

namespace tern::kernels::cpu {

const KernelTable* avx512_kernels() { return nullptr; }

}  // namespace tern::kernels::cpu
