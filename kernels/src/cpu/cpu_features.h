// Internal: which SIMD instruction sets this CPU and OS can run (cpuid + XGETBV via GCC's builtins).
#pragma once

namespace tern::kernels::cpu {

bool cpu_has_avx2();    // AVX2 + FMA-free subset we use (AVX2, F16C, BMI2)
bool cpu_has_avx512();  // AVX-512 F, BW, DQ, VL

}  // namespace tern::kernels::cpu
