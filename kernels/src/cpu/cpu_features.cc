#include "cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace tern::kernels::cpu {
namespace {

#if defined(__x86_64__)
struct X86Features {
  bool avx2 = false;
  bool avx512 = false;
};

// cpuid says what the CPU has; XGETBV says which register state the OS saves on context switch
// (without it, using the registers corrupts other processes' state or faults).
X86Features detect() {
  X86Features f;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), f16c = ecx & (1u << 29);
  if (!osxsave || !avx || !f16c) return f;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool os_avx = (xcr0_lo & 0x6u) == 0x6u;            // XMM and YMM state
  const bool os_avx512 = (xcr0_lo & 0xE6u) == 0xE6u;       // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!os_avx || __get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = ebx & (1u << 5), bmi2 = ebx & (1u << 8);
  const bool avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17);
  const bool avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31);
  f.avx2 = avx2 && bmi2;
  f.avx512 = f.avx2 && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl;
  return f;
}

const X86Features& features() {
  static const X86Features f = detect();
  return f;
}
#endif

}  // namespace

bool cpu_has_avx2() {
#if defined(__x86_64__)
  return features().avx2;
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__)
  return features().avx512;
#else
  return false;
#endif
}

}  // namespace tern::kernels::cpu
