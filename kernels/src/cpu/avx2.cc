// AVX2 (+F16C, BMI2) codec kernels: the generic kernels of simd_kernels.h over 8-lane ymm vectors.
// Bit-identical to scalar.cc; see simd_kernels.h for how. No FMA, and no pdep/pext (microcoded and
// slow on AVX2-only AMD CPUs before Zen 3): 2-bit codes are packed with packs/pshufb/movemask.
#include "cpu_kernels.h"

#if defined(__AVX2__) && defined(__F16C__)

#include <immintrin.h>

#include "simd_kernels.h"

namespace tern::kernels::cpu {
namespace {  // NOLINT: internal linkage (see simd_kernels.h)

struct Avx2 {
  using F = __m256;
  static constexpr std::size_t kWidth = 8;
  static constexpr std::size_t kPhiloxQuads = 12;  // per loop iteration of philox()
  static constexpr std::size_t kPhiloxStep = 48;   // per call
  static constexpr float kUScale = 0x1p-24f;  // philox() stores float(w >> 8)

  static __m256i i32(std::uint32_t v) { return _mm256_set1_epi32(static_cast<int>(v)); }

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float f) { return _mm256_set1_ps(f); }
  static F load_f32(const void* p) { return _mm256_loadu_ps(static_cast<const float*>(p)); }
  static void store_f32(void* p, F v) { _mm256_storeu_ps(static_cast<float*>(p), v); }
  static constexpr std::size_t kStreamAlign = 32;
  static void stream_f32(void* p, F v) { _mm256_stream_ps(static_cast<float*>(p), v); }
  static void stream_fence() { _mm_sfence(); }

  static F load_f16(const void* p) { return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
  static F load_bf16(const void* p) {
    const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static std::uint32_t store_f16(void* p, F v) {
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(static_cast<__m128i*>(p), h);
    const __m128i e = _mm_set1_epi16(0x7C00);
    const __m128i c = _mm_cmpeq_epi16(_mm_and_si128(h, e), e);
    return static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(c, _mm_setzero_si128())));
  }
  static std::uint32_t store_bf16(void* p, F v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i hi = _mm256_srli_epi32(u, 16);
    const __m256i bias = _mm256_add_epi32(i32(0x7FFF), _mm256_and_si256(hi, i32(1)));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, i32(0x7FFFFFFF)), i32(0x7F800000));
    const __m256i r = _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, i32(0x40)), nan);
    const __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(static_cast<__m128i*>(p), h);
    const __m256i e = i32(0x7F80);
    return static_cast<std::uint32_t>(
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(r, e), e))));
  }

  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F max_bits(F a, F b) {
    return _mm256_castsi256_ps(_mm256_max_epu32(_mm256_castps_si256(a), _mm256_castps_si256(b)));
  }
  static std::uint32_t hmax_bits(F v) {
    const __m256i u = _mm256_castps_si256(v);
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4E));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xB1));
    return static_cast<std::uint32_t>(_mm_cvtsi128_si32(m));
  }
  static F abs(F a) { return _mm256_and_ps(a, _mm256_castsi256_ps(i32(0x7FFFFFFF))); }
  static float fold32(const F* acc) {
    const F r8 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));  // j += j+16, j+8
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(r8), _mm256_extractf128_ps(r8, 1));         // j += j+4
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));                                                  // j += j+2
    r = _mm_add_ss(r, _mm_shuffle_ps(r, r, 1));                                              // j += j+1
    return _mm_cvtss_f32(r);
  }

  static std::uint32_t bits(F m) { return static_cast<std::uint32_t>(_mm256_movemask_ps(m)); }
  static std::uint32_t nonfinite(F x) {
    const __m256i e = i32(0x7F800000);
    return bits(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), e), e)));
  }
  static std::uint32_t lt(F a, F b) { return bits(_mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  // 2-bit codes of 16 elements from their nonzero masks and (nonzero & sign) vectors: saturating
  // packs keep each lane's top bit, a shuffle interleaves nonzero/minus bytes, movemask collects.
  static std::uint32_t codes16(F nz_a, F neg_a, F nz_b, F neg_b) {
    const __m256i pa = _mm256_packs_epi32(_mm256_castps_si256(nz_a), _mm256_castps_si256(neg_a));
    const __m256i pb = _mm256_packs_epi32(_mm256_castps_si256(nz_b), _mm256_castps_si256(neg_b));
    const __m256i q = _mm256_permute4x64_epi64(_mm256_packs_epi16(pa, pb), 0xD8);
    const __m256i order = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15,  //
                                           0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    return static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_shuffle_epi8(q, order)));
  }
  // nz: nonzero masks of a row's 4 vectors; minus where also x < 0 (x is not ±0 where nonzero, so
  // x's sign bit is that test).
  static std::uint64_t codes(const F* nz, const F* x) {
    F neg[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) neg[r] = _mm256_and_ps(nz[r], x[r]);
    const std::uint64_t lo = codes16(nz[0], neg[0], nz[1], neg[1]);
    const std::uint64_t hi = codes16(nz[2], neg[2], nz[3], neg[3]);
    return lo | (hi << 32);
  }
  static std::uint64_t terngrad_row(const F* t, const F* x) {
    F nz[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) nz[r] = _mm256_cmp_ps(t[r], abs(x[r]), _CMP_LT_OQ);
    return codes(nz, x);
  }
  static std::uint64_t ternary_ef_row(const F* x, F thr) {
    F nz[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const F a = abs(x[r]);
      nz[r] = _mm256_and_ps(_mm256_cmp_ps(a, zero(), _CMP_GT_OQ), _mm256_cmp_ps(a, thr, _CMP_GE_OQ));
    }
    return codes(nz, x);
  }

  static F ternary(std::uint32_t c, F s) {
    const __m256i t = _mm256_srlv_epi32(i32(c), _mm256_set_epi32(14, 12, 10, 8, 6, 4, 2, 0));
    const __m256i nz = _mm256_cmpeq_epi32(_mm256_and_si256(t, i32(1)), i32(1));
    const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(t, 30), i32(0x80000000u));
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_or_si256(sign, _mm256_castps_si256(s)), nz));
  }
  static F zero_lanes(F v, std::uint32_t b) {
    const __m256i t = _mm256_srlv_epi32(i32(b), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
    return _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(t, i32(1)), i32(1))), v);
  }
  static F sign(std::uint32_t b, F s) {
    const __m256i t = _mm256_srlv_epi32(i32(b), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
    return _mm256_xor_ps(s, _mm256_castsi256_ps(_mm256_slli_epi32(t, 31)));
  }

  // Philox4x32-7 on 3 x 4 counters kept in 64-bit lanes: only the low 32 bits of a lane matter
  // (vpmuludq reads just those), so a multiply gives hi and lo directly; hi is brought down with a
  // dword shuffle (off the multiplier ports). Counter lane l of a set holds quad {0,2,1,3}[l] so
  // that one unpack puts the words in element order.
  static void philox(float* out, std::uint64_t quad0, std::size_t quads, const PhiloxKeys& k) {
    constexpr int kSets = 3;  // enough independent chains for 3 ports; 4 spills (16 ymm registers)
    const __m256i m0 = _mm256_set1_epi64x(kPhM0), m1 = _mm256_set1_epi64x(kPhM1);
    const __m256i lane_quads = _mm256_set_epi64x(3, 1, 2, 0);
    const __m256i qmask = _mm256_set1_epi64x(0x3FFFFFFFFFFFFFFFll);
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhM1) * k.stream_lo;
    const __m256i r0x0 = i32(static_cast<std::uint32_t>(p1 >> 32) ^ k.k0[0]);
    const __m256i r0x1 = i32(static_cast<std::uint32_t>(p1));
    const __m256i r0x2 = i32(k.stream_hi ^ k.k1[0]);
    for (std::size_t q = 0; q < quads; q += 4 * kSets) {
      const __m256i base = _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(quad0 + q)), lane_quads);
      __m256i x0[kSets], x1[kSets], x2[kSets], x3[kSets];
#pragma GCC unroll 3
      for (int j = 0; j < kSets; ++j) {
        const __m256i c = _mm256_and_si256(_mm256_add_epi64(base, _mm256_set1_epi64x(4 * j)), qmask);
        const __m256i p = _mm256_mul_epu32(c, m0);
        x0[j] = _mm256_xor_si256(_mm256_srli_epi64(c, 32), r0x0);
        x1[j] = r0x1;
        x2[j] = _mm256_xor_si256(_mm256_shuffle_epi32(p, 0xB1), r0x2);
        x3[j] = p;
      }
      for (int r = 1; r < kPhRounds - 1; ++r) {
        const __m256i k0 = i32(k.k0[r]), k1 = i32(k.k1[r]);
#pragma GCC unroll 4
        for (int j = 0; j < kSets; ++j) {
          // x1 ^ k0 and x3 ^ k1 off the multiply -> shuffle -> xor chain (the empty asm keeps GCC
          // from reassociating the xors back onto it).
          __m256i t1 = _mm256_xor_si256(x1[j], k0), t3 = _mm256_xor_si256(x3[j], k1);
          asm("" : "+x"(t1), "+x"(t3));
          const __m256i p0 = _mm256_mul_epu32(x0[j], m0);
          const __m256i p1v = _mm256_mul_epu32(x2[j], m1);
          x0[j] = _mm256_xor_si256(_mm256_shuffle_epi32(p1v, 0xB1), t1);
          x2[j] = _mm256_xor_si256(_mm256_shuffle_epi32(p0, 0xB1), t3);
          x1[j] = p1v;
          x3[j] = p0;
        }
      }
      // The last round leaves each product's halves swapped: (hi, lo) = (word 0 before the xor, word 1).
      const __m256i k0 = i32(k.k0[kPhRounds - 1]), k1 = i32(k.k1[kPhRounds - 1]);
#pragma GCC unroll 4
      for (int j = 0; j < kSets; ++j) {
        const __m256i s1 = _mm256_shuffle_epi32(_mm256_mul_epu32(x2[j], m1), 0xB1);
        const __m256i s0 = _mm256_shuffle_epi32(_mm256_mul_epu32(x0[j], m0), 0xB1);
        const __m256i w01 = _mm256_blend_epi32(_mm256_xor_si256(_mm256_xor_si256(s1, x1[j]), k0), s1, 0xAA);
        const __m256i w23 = _mm256_blend_epi32(_mm256_xor_si256(_mm256_xor_si256(s0, x3[j]), k1), s0, 0xAA);
        store_words(out + 4 * q + 16 * j, w01, w23);
      }
    }
  }

  // w01, w23: 64-bit lane l holds words (0, 1) / (2, 3) of the set's quad {0,2,1,3}[l].
  static void store_words(float* out, __m256i w01, __m256i w23) {
    const __m256i lo = _mm256_unpacklo_epi64(w01, w23);  // quads 0, 1: elements 0..7
    const __m256i hi = _mm256_unpackhi_epi64(w01, w23);  // quads 2, 3: elements 8..15
    _mm256_storeu_ps(out, _mm256_cvtepi32_ps(_mm256_srli_epi32(lo, 8)));
    _mm256_storeu_ps(out + 8, _mm256_cvtepi32_ps(_mm256_srli_epi32(hi, 8)));
  }
};

using Impl = SimdKernels<Avx2>;

}  // namespace

const KernelTable* avx2_kernels() {
  static const KernelTable table{"avx2", Impl::encode, Impl::decode, Impl::decode_accumulate,
                                 Impl::residual_update};
  return &table;
}

}  // namespace tern::kernels::cpu

#else

namespace tern::kernels::cpu {

const KernelTable* avx2_kernels() { return nullptr; }

}  // namespace tern::kernels::cpu

#endif
