// AVX-512 (F, BW, DQ, VL) codec kernels: the generic kernels of simd_kernels.h over 16-lane zmm
// vectors. Bit-identical to scalar.cc; see simd_kernels.h for how.
#include "cpu_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && \
    defined(__F16C__) && defined(__BMI2__)

// GCC 12's AVX-512 intrinsics read self-initialized "undefined" vectors (GCC PR 105593), which
// -Wmaybe-uninitialized reports once inlined; the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "simd_kernels.h"

namespace tern::kernels::cpu {
namespace {  // NOLINT: internal linkage (see simd_kernels.h)

struct Avx512 {
  using F = __m512;
  static constexpr std::size_t kWidth = 16;
  static constexpr std::size_t kPhiloxQuads = 32;  // per loop iteration of philox()
  static constexpr std::size_t kPhiloxStep = 32;   // per call
  static constexpr float kUScale = 0x1p-32f;  // philox() stores float(w & ~0xFF)

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float f) { return _mm512_set1_ps(f); }
  static F load_f32(const void* p) { return _mm512_loadu_ps(p); }
  static void store_f32(void* p, F v) { _mm512_storeu_ps(p, v); }
  static constexpr std::size_t kStreamAlign = 64;
  static void stream_f32(void* p, F v) { _mm512_stream_ps(static_cast<float*>(p), v); }
  static void stream_fence() { _mm_sfence(); }

  static F load_f16(const void* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }
  static F load_bf16(const void* p) {
    const __m256i h = _mm256_loadu_si256(static_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static std::uint32_t store_f16(void* p, F v) {
    const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(static_cast<__m256i*>(p), h);
    const __m256i e = _mm256_set1_epi16(0x7C00);
    return _cvtmask16_u32(_mm256_cmpeq_epi16_mask(_mm256_and_si256(h, e), e));
  }
  static std::uint32_t store_bf16(void* p, F v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i hi = _mm512_srli_epi32(u, 16);
    const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(hi, _mm512_set1_epi32(1)));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    const __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
    r = _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x40));
    _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
    const __m512i e = _mm512_set1_epi32(0x7F80);
    return _cvtmask16_u32(_mm512_cmpeq_epi32_mask(_mm512_and_si512(r, e), e));
  }

  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F max_bits(F a, F b) {
    return _mm512_castsi512_ps(_mm512_max_epu32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }
  static std::uint32_t hmax_bits(F v) { return _mm512_reduce_max_epu32(_mm512_castps_si512(v)); }
  static float fold32(const F* acc) {
    const F r16 = _mm512_add_ps(acc[0], acc[1]);                                            // j += j+16
    const __m256 r8 = _mm256_add_ps(_mm512_castps512_ps256(r16), _mm512_extractf32x8_ps(r16, 1));  // j += j+8
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(r8), _mm256_extractf128_ps(r8, 1));        // j += j+4
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));                                                 // j += j+2
    r = _mm_add_ss(r, _mm_shuffle_ps(r, r, 1));                                             // j += j+1
    return _mm_cvtss_f32(r);
  }
  static F abs(F a) { return _mm512_abs_ps(a); }

  static std::uint32_t nonfinite(F x) { return _cvtmask16_u32(_mm512_fpclass_ps_mask(x, 0x99)); }  // NaN, ±Inf
  static std::uint32_t lt(F a, F b) { return _cvtmask16_u32(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)); }
  // Nonzero and minus masks of a row to its 2-bit codes: pdep spreads them to the even/odd bits.
  static std::uint64_t codes(__mmask16 nz0, __mmask16 nz1, __mmask16 neg0, __mmask16 neg1) {
    const std::uint32_t nz = _cvtmask16_u32(nz0) | (_cvtmask16_u32(nz1) << 16);
    const std::uint32_t neg = _cvtmask16_u32(neg0) | (_cvtmask16_u32(neg1) << 16);
    return _pdep_u64(nz, 0x5555555555555555ull) | _pdep_u64(neg, 0xAAAAAAAAAAAAAAAAull);
  }
  static std::uint64_t terngrad_row(const F* t, const F* x) {
    const __mmask16 nz0 = _mm512_cmp_ps_mask(t[0], abs(x[0]), _CMP_LT_OQ);
    const __mmask16 nz1 = _mm512_cmp_ps_mask(t[1], abs(x[1]), _CMP_LT_OQ);
    return codes(nz0, nz1, _mm512_mask_cmp_ps_mask(nz0, x[0], zero(), _CMP_LT_OQ),
                 _mm512_mask_cmp_ps_mask(nz1, x[1], zero(), _CMP_LT_OQ));
  }
  static std::uint64_t ternary_ef_row(const F* x, F thr) {
    const F a0 = abs(x[0]), a1 = abs(x[1]);
    const __mmask16 nz0 = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(a0, zero(), _CMP_GT_OQ), a0, thr, _CMP_GE_OQ);
    const __mmask16 nz1 = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(a1, zero(), _CMP_GT_OQ), a1, thr, _CMP_GE_OQ);
    return codes(nz0, nz1, _mm512_mask_cmp_ps_mask(nz0, x[0], zero(), _CMP_LT_OQ),
                 _mm512_mask_cmp_ps_mask(nz1, x[1], zero(), _CMP_LT_OQ));
  }

  static F ternary(std::uint32_t c, F s) {
    const __m512i shifts = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i t = _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(c)), shifts);
    const __mmask16 nz = _mm512_test_epi32_mask(t, _mm512_set1_epi32(1));
    // (bit 1 of the code moved to the sign bit, masked to it) | s, zeroed where the low bit is clear.
    return _mm512_castsi512_ps(_mm512_maskz_ternarylogic_epi32(nz, _mm512_slli_epi32(t, 30),
                                                               _mm512_set1_epi32(static_cast<int>(0x80000000u)),
                                                               _mm512_castps_si512(s), 0xEA));
  }
  static F zero_lanes(F v, std::uint32_t bits) { return _mm512_maskz_mov_ps(_cvtu32_mask16(~bits & 0xFFFFu), v); }
  static F sign(std::uint32_t bits, F s) {
    return _mm512_mask_xor_ps(s, _cvtu32_mask16(bits & 0xFFFFu), s, _mm512_set1_ps(-0.0f));
  }

  // Philox4x32-7 on 4 x 8 counters kept in 64-bit lanes: only the low 32 bits of a lane matter
  // (vpmuludq reads just those), so a multiply gives hi and lo directly and hi is brought down with
  // a dword shuffle (port 5) rather than a shift (port 0, which the multiplies need). Counter lane l
  // of a set holds quad {0,4,1,5,2,6,3,7}[l] so that one unpack puts the words in element order.
  static void philox(float* out, std::uint64_t quad0, std::size_t quads, const PhiloxKeys& k) {
    constexpr int kSets = 4;
    const __m512i m0 = _mm512_set1_epi64(kPhM0), m1 = _mm512_set1_epi64(kPhM1);
    const __m512i lane_quads = _mm512_set_epi64(7, 3, 6, 2, 5, 1, 4, 0);
    const __m512i qmask = _mm512_set1_epi64(0x3FFFFFFFFFFFFFFFll);
    // Round 0: words 2 and 3 are the stream for every lane.
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhM1) * k.stream_lo;
    const __m512i r0x0 = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(p1 >> 32) ^ k.k0[0]));
    const __m512i r0x1 = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(p1)));
    const __m512i r0x2 = _mm512_set1_epi32(static_cast<int>(k.stream_hi ^ k.k1[0]));
    for (std::size_t q = 0; q < quads; q += 8 * kSets) {
      const __m512i base = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(quad0 + q)), lane_quads);
      __m512i x0[kSets], x1[kSets], x2[kSets], x3[kSets];
#pragma GCC unroll 4
      for (int j = 0; j < kSets; ++j) {
        const __m512i c = _mm512_and_si512(_mm512_add_epi64(base, _mm512_set1_epi64(8 * j)), qmask);
        const __m512i p = _mm512_mul_epu32(c, m0);
        x0[j] = _mm512_xor_si512(_mm512_srli_epi64(c, 32), r0x0);
        x1[j] = r0x1;
        x2[j] = _mm512_xor_si512(_mm512_shuffle_epi32(p, _MM_PERM_CDAB), r0x2);
        x3[j] = p;
      }
      for (int r = 1; r < kPhRounds - 1; ++r) {
        const __m512i k0 = _mm512_set1_epi32(static_cast<int>(k.k0[r]));
        const __m512i k1 = _mm512_set1_epi32(static_cast<int>(k.k1[r]));
#pragma GCC unroll 4
        for (int j = 0; j < kSets; ++j) {
          const __m512i p0 = _mm512_mul_epu32(x0[j], m0);
          const __m512i p1v = _mm512_mul_epu32(x2[j], m1);
          x0[j] = _mm512_ternarylogic_epi32(_mm512_shuffle_epi32(p1v, _MM_PERM_CDAB), x1[j], k0, 0x96);
          x2[j] = _mm512_ternarylogic_epi32(_mm512_shuffle_epi32(p0, _MM_PERM_CDAB), x3[j], k1, 0x96);
          x1[j] = p1v;
          x3[j] = p0;
        }
      }
      // The last round leaves each product's halves swapped, (hi, lo): xoring only the even dwords gives
      // (word 0, word 1) and (word 2, word 3) per 64-bit lane directly.
      const __m512i k0 = _mm512_set1_epi32(static_cast<int>(k.k0[kPhRounds - 1]));
      const __m512i k1 = _mm512_set1_epi32(static_cast<int>(k.k1[kPhRounds - 1]));
#pragma GCC unroll 4
      for (int j = 0; j < kSets; ++j) {
        const __m512i s1 = _mm512_shuffle_epi32(_mm512_mul_epu32(x2[j], m1), _MM_PERM_CDAB);
        const __m512i s0 = _mm512_shuffle_epi32(_mm512_mul_epu32(x0[j], m0), _MM_PERM_CDAB);
        const __m512i w01 = _mm512_mask_ternarylogic_epi32(s1, 0x5555, x1[j], k0, 0x96);
        const __m512i w23 = _mm512_mask_ternarylogic_epi32(s0, 0x5555, x3[j], k1, 0x96);
        store_words(out + 4 * q + 32 * j, w01, w23);
      }
    }
  }

  // w01, w23: 64-bit lane l holds words (0, 1) / (2, 3) of the set's quad {0,4,1,5,2,6,3,7}[l].
  static void store_words(float* out, __m512i w01, __m512i w23) {
    const __m512i lo = _mm512_unpacklo_epi64(w01, w23);  // quads 0..3: elements 0..15
    const __m512i hi = _mm512_unpackhi_epi64(w01, w23);  // quads 4..7: elements 16..31
    const __m512i top24 = _mm512_set1_epi32(static_cast<int>(0xFFFFFF00u));
    _mm512_storeu_ps(out, _mm512_cvtepu32_ps(_mm512_and_si512(lo, top24)));
    _mm512_storeu_ps(out + 16, _mm512_cvtepu32_ps(_mm512_and_si512(hi, top24)));
  }
};

using Impl = SimdKernels<Avx512>;

}  // namespace

const KernelTable* avx512_kernels() {
  static const KernelTable table{"avx512", Impl::encode, Impl::decode, Impl::decode_accumulate,
                                 Impl::residual_update};
  return &table;
}

}  // namespace tern::kernels::cpu

#else

namespace tern::kernels::cpu {

const KernelTable* avx512_kernels() { return nullptr; }

}  // namespace tern::kernels::cpu

#endif
