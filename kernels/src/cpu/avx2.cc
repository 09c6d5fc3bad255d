// Placeholder until the avx2 kernels land: the dispatcher falls back to the scalar reference.
#include "cpu_kernels.h"

namespace tern::kernels::cpu {

const KernelTable* avx2_kernels() { return nullptr; }

}  // namespace tern::kernels::cpu
