// Internal: the codec kernels written once over a small SIMD backend (avx512.cc, avx2.cc).
//
// Each ISA's translation unit defines a backend struct S (vector types and a few dozen primitives,
// see the list below) and instantiates SimdKernels<S>. Everything here has internal linkage (an
// unnamed namespace): the two translation units are compiled with different -m flags, so they must
// not share any out-of-line function, not even an inline one (the linker would keep one copy and an
// AVX-512 body could end up called on an AVX2-only machine). For the same reason this file calls no
// inline function of the public headers (float16.h, philox.h, cpu_kernels.h's helpers; it takes
// constants from them) and no <cmath>/<algorithm> templates; it only uses compiler builtins.
//
// Bit-exactness with scalar.cc (the reference) rests on:
//  - the same fp32 operations in the same order (one add for the residual, one multiply for u·s,
//    the 32-lane tree of block_lane_sum, sqrt/divide correctly rounded), never an FMA;
//  - max|x|, the codes, the casts and all counts being order-independent;
//  - tails handled by copying into zero-padded local buffers (zeros add +0.0 to non-negative lane
//    sums, which changes nothing, and produce zero codes), never by reading or writing past a buffer.
//
// Backend interface (W = S::kWidth lanes of fp32, 8 or 16; "bits" are lane masks in a uint32):
//   constants kWidth, kPhiloxQuads, kPhiloxStep, kUScale (see philox below); type F (W floats)
//   F zero(), set1(float), load_f32(const void*), load_f16(const void*), load_bf16(const void*)
//   void store_f32(void*, F); uint32 store_f16(void*, F), store_bf16(void*, F): narrow (RNE) and
//     return the lanes whose result has an all-ones exponent (±Inf or NaN)
//   void stream_f32(void*, F): non-temporal store to a kStreamAlign-aligned address; stream_fence()
//   F add, sub, mul, abs; max_bits(F, F): unsigned integer max of the bit patterns
//   uint32 hmax_bits(F): unsigned integer max of the lanes' bit patterns
//   float fold32(const F acc[32/W]): the 32 lanes (acc[r] lane l = lane r·W + l) folded as
//     block_lane_sum does: lane j += lane j+16, then j+8, j+4, j+2, j+1; returns lane 0
//   uint32 nonfinite(F), lt(F a, F b) (a < b, ordered)
//   uint64 terngrad_row(const F t[32/W], const F x[32/W]): the 2-bit codes of one row of 32 elements,
//     nonzero iff t < |x|, minus iff also x < 0 (01 = +, 11 = -; element k at bits 2k, 2k+1)
//   uint64 ternary_ef_row(const F x[32/W], F thr): the same with nonzero iff |x| > 0 && |x| >= thr
//   F zero_lanes(F v, uint32 bits): v with the lanes in bits set to +0.0f
//   F ternary(uint32 codes, F s): lane k from 2-bit code (codes >> 2k) & 3: 01 -> s, 11 -> -s, else +0
//   F sign(uint32 bits, F s): lane k = bit k ? -s : s
//   void philox(float* out, uint64 quad0, size_t quads, const PhiloxKeys&): for q < quads (a multiple
//     of kPhiloxQuads; called with kPhiloxStep quads, a multiple of it) and word j of quad (quad0 + q) mod 2^62, out[4q + j] = v with v·kUScale
//     the uniform (w >> 8)·2^-24: v = float(w >> 8) with kUScale = 2^-24, or float(w & ~0xFF) with
//     kUScale = 2^-32 (both exact)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cpu_kernels.h"
#include "tern/kernels/philox.h"

namespace tern::kernels::cpu {
namespace {  // NOLINT(google-build-namespaces,cert-dcl59-cpp): internal linkage per ISA is the point

constexpr std::size_t kRow = 32;  // elements per row: the lane-sum width, one 64-bit ternary code word
constexpr unsigned kRowShift = 5;  // log2(kRow)
static_assert(kRow == 1u << kRowShift && kRow == kMinBlockSize);
constexpr std::size_t kGroup = 2048;  // elements per encode group (Philox words generated ahead)
// fp32 decodes of at least this many output bytes bypass the cache (a pipeline chunk of the
// allgather is 512 KiB; smaller operations are likely read back from the cache right away).
constexpr std::size_t kStreamMinBytes = 256 << 10;

constexpr std::uint32_t kPhM0 = 0xD2511F53u, kPhM1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhW0 = 0x9E3779B9u, kPhW1 = 0xBB67AE85u;

constexpr int kPhRounds = kTernGradPhiloxRounds;  // a constant of philox.h, not a function
static_assert(kPhRounds >= 2, "the backends peel the first and the last round");

struct PhiloxKeys {
  std::uint32_t k0[kPhRounds];  // round keys: seed words plus r·W0 / r·W1
  std::uint32_t k1[kPhRounds];
  std::uint32_t stream_lo, stream_hi;
};

PhiloxKeys make_philox_keys(std::uint64_t seed, std::uint64_t stream) {
  PhiloxKeys k{};
  std::uint32_t a = static_cast<std::uint32_t>(seed), b = static_cast<std::uint32_t>(seed >> 32);
  for (int r = 0; r < kPhRounds; ++r) {
    k.k0[r] = a;
    k.k1[r] = b;
    a += kPhW0;
    b += kPhW1;
  }
  k.stream_lo = static_cast<std::uint32_t>(stream);
  k.stream_hi = static_cast<std::uint32_t>(stream >> 32);
  return k;
}

constexpr std::size_t dtype_bytes(DType d) { return d == DType::kF32 ? 4 : 2; }
constexpr std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }
constexpr std::size_t smaller(std::size_t a, std::size_t b) { return a < b ? a : b; }

float load_float(const void* p) {
  float f;
  std::memcpy(&f, p, sizeof f);
  return f;
}
void store_float(void* p, float f) { std::memcpy(p, &f, sizeof f); }
std::uint32_t float_word(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
bool word_nonfinite(std::uint32_t u) { return (u & 0x7F800000u) == 0x7F800000u; }
std::uint32_t lane_mask(std::size_t n) { return n >= 32 ? 0xFFFFFFFFu : (1u << n) - 1u; }

void tally_bits(NonFiniteTally& t, std::uint32_t bits, std::size_t base) {
  if (t.count == 0) t.first = base + static_cast<std::size_t>(__builtin_ctz(bits));
  t.count += static_cast<std::size_t>(__builtin_popcount(bits));
}

std::size_t invalid_ternary(std::uint64_t w) {
  return static_cast<std::size_t>(__builtin_popcountll(w & ~(w << 1) & 0xAAAAAAAAAAAAAAAAull));
}

// Which block statistics pass 1 gathers.
enum class Kind { kTernGrad, kTernGradClip, kTernaryEf, kSignEf };

template <class S>
struct SimdKernels {
  using F = typename S::F;
  static constexpr std::size_t W = S::kWidth;
  static constexpr std::size_t R = kRow / W;  // vectors per row
  static_assert(kRow % W == 0 && (W == 8 || W == 16));
  static_assert(S::kPhiloxStep % S::kPhiloxQuads == 0);
  static constexpr std::size_t kUSlack = 4 * S::kPhiloxStep + 4;  // Philox words past a group: misalignment, rounding

  template <DType D>
  static F load(const std::uint8_t* p) {
    if constexpr (D == DType::kF32) return S::load_f32(p);
    else if constexpr (D == DType::kF16) return S::load_f16(p);
    else return S::load_bf16(p);
  }

  // Stores W values as dtype O; returns the lanes that became ±Inf/NaN when narrowed (0 for fp32).
  template <DType O>
  static std::uint32_t store(std::uint8_t* p, F v) {
    if constexpr (O == DType::kF32) {
      S::store_f32(p, v);
      return 0;
    } else if constexpr (O == DType::kF16) {
      return S::store_f16(p, v);
    } else {
      return S::store_bf16(p, v);
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Encode: cast codecs.

  template <DType D, bool Res, Codec C>
  static std::uint32_t cast_vector(const std::uint8_t* in, const float* res, std::uint8_t* out) {
    F x = load<D>(in);
    if constexpr (Res) x = S::add(x, S::load_f32(res));
    if constexpr (C == Codec::kFp32) {
      S::store_f32(out, x);
      return S::nonfinite(x);
    } else if constexpr (C == Codec::kFp16) {
      return S::store_f16(out, x);
    } else {
      return S::store_bf16(out, x);
    }
  }

  template <DType D, bool Res, Codec C>
  static NonFiniteTally encode_cast(const EncodeJob& job) {
    constexpr std::size_t es = dtype_bytes(D);
    constexpr std::size_t cs = C == Codec::kFp32 ? 4 : 2;
    NonFiniteTally tally;
    const auto* in = static_cast<const std::uint8_t*>(job.input);
    const float* res = job.residual;
    const std::size_t n = job.count;
    std::size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      const std::uint32_t b0 = cast_vector<D, Res, C>(in + i * es, Res ? res + i : nullptr, job.payload + i * cs);
      const std::uint32_t b1 =
          cast_vector<D, Res, C>(in + (i + W) * es, Res ? res + i + W : nullptr, job.payload + (i + W) * cs);
      if (__builtin_expect((b0 | b1) != 0, 0)) tally_bits(tally, b0 | (b1 << W), i);
    }
    for (; i < n; i += W) {
      const std::size_t r = smaller(W, n - i);
      alignas(64) std::uint8_t sin[W * 4] = {};
      alignas(64) float sres[W] = {};
      alignas(64) std::uint8_t sout[W * 4];
      std::memcpy(sin, in + i * es, r * es);
      if constexpr (Res) std::memcpy(sres, res + i, r * sizeof(float));
      const std::uint32_t b = cast_vector<D, Res, C>(sin, sres, sout) & lane_mask(r);
      std::memcpy(job.payload + i * cs, sout, r * cs);
      if (b) tally_bits(tally, b, i);
    }
    return tally;
  }

  // ------------------------------------------------------------------------------------------------
  // Encode: block-scaled codecs. The tensor is cut into groups of G = max(block, kGroup) elements
  // (a whole number of blocks, small enough to stay in L1/L2). Per group: terngrad generates all
  // Philox uniforms; pass 1 computes every block's scale (and materializes x unless x is the fp32
  // input itself); pass 2 computes the codes. A partial last group is staged through zero-padded
  // scratch buffers so that every loop works on whole rows of 32 elements.

  struct Scratch {
    alignas(64) float x[kMaxBlockSize];            // x = widen(input) + residual (also staged residual)
    alignas(64) float u[kMaxBlockSize + kUSlack];  // uniforms / S::kUScale
    alignas(64) std::uint8_t in[kMaxBlockSize * 4];  // staged input of a partial last group
    alignas(64) std::uint8_t codes[kMaxBlockSize / 4];  // staged codes of a partial last group
    float mult[kMaxBlockSize / kMinBlockSize];  // per block: terngrad's multiplier, ternary-ef's threshold
    bool folded[kMaxBlockSize / kMinBlockSize];  // per block: terngrad's mult is s·kUScale (else s)
  };

  // Pass 1 over one block (m real elements, mpad = m rounded up to a row, zero-padded beyond m):
  // returns the scale; materializes x into xout unless x is the fp32 input itself; sign-ef writes
  // its codes here. max|x| is an unsigned integer max of the |x| bit patterns: the same as the fp32
  // max for finite values, and any NaN/Inf lifts it to >= 0x7F800000, which flags the block.
  template <Kind K, DType D, bool Res>
  static float block_scale(const EncodeJob& job, const std::uint8_t* in, const float* res, float* xout,
                           std::size_t m, std::size_t mpad, std::size_t base, std::uint8_t* sign_codes,
                           NonFiniteTally& tally) {
    constexpr std::size_t es = dtype_bytes(D);
    constexpr bool kDirect = D == DType::kF32 && !Res;
    F amax[R], acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) amax[r] = acc[r] = S::zero();
    for (std::size_t k = 0; k < mpad; k += kRow) {
      std::uint32_t sgn = 0;
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const std::size_t i = k + r * W;
        F x = load<D>(in + i * es);
        if constexpr (Res) x = S::add(x, S::load_f32(res + i));
        if constexpr (!kDirect) S::store_f32(xout + i, x);
        const F a = S::abs(x);
        amax[r] = S::max_bits(amax[r], a);
        if constexpr (K == Kind::kTernGradClip) acc[r] = S::add(acc[r], S::mul(x, x));
        if constexpr (K == Kind::kTernaryEf || K == Kind::kSignEf) acc[r] = S::add(acc[r], a);
        if constexpr (K == Kind::kSignEf) sgn |= S::lt(x, S::zero()) << (r * W);
      }
      if constexpr (K == Kind::kSignEf) std::memcpy(sign_codes + k / 8, &sgn, 4);
    }
#pragma GCC unroll 4
    for (std::size_t r = 1; r < R; ++r) amax[0] = S::max_bits(amax[0], amax[r]);
    const std::uint32_t amax_word = S::hmax_bits(amax[0]);
    if (__builtin_expect(amax_word >= 0x7F800000u, 0)) {  // rare: count exactly, in index order
      for (std::size_t k = 0; k < m; ++k) {
        const std::uint32_t u = kDirect ? float_word(load_float(in + 4 * k)) : float_word(xout[k]);
        if (word_nonfinite(u)) tally_bits(tally, 1u, base + k);
      }
    }
    float amax_s;
    std::memcpy(&amax_s, &amax_word, 4);
    const float count = static_cast<float>(m);
    if constexpr (K == Kind::kTernGrad) {
      return amax_s;
    } else {
      const float sum = S::fold32(acc);  // block_lane_sum's tree over the 32 lanes
      if constexpr (K == Kind::kTernGradClip) {
        const float sigma = __builtin_sqrtf(sum / count);
        const float clip_at = job.clip_sigmas * sigma;
        return clip_at < amax_s ? clip_at : amax_s;
      } else {
        return sum / count;
      }
    }
  }

  // Pass 2, terngrad, over all rows of a group: nonzero iff u·s < |x|, where u = v·S::kUScale and
  // v is what S::philox stored (u exactly). The multiplier is mult[block] = s·kUScale, which gives
  // the same product as (v·kUScale)·s whenever s·kUScale is exact (s == 0 or s >= 2^-94 covers
  // kUScale >= 2^-32); blocks with a smaller scale take the reference's two multiplies.
  static void terngrad_codes(const std::uint8_t* xs, const float* u, const float* mult, const bool* folded,
                             std::size_t rows, unsigned row_shift, std::uint8_t* codes) {
    const F uscale = S::set1(S::kUScale);
    for (std::size_t row = 0; row < rows; ++row) {
      const std::size_t k = row * kRow, j = row >> row_shift;
      const F sv = S::set1(mult[j]);
      F t[R], x[R];
      if (__builtin_expect(folded[j], 1)) {
#pragma GCC unroll 4
        for (std::size_t r = 0; r < R; ++r) t[r] = S::mul(S::load_f32(u + k + r * W), sv);
      } else {
#pragma GCC unroll 4
        for (std::size_t r = 0; r < R; ++r) t[r] = S::mul(S::mul(S::load_f32(u + k + r * W), uscale), sv);
      }
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) x[r] = S::load_f32(xs + 4 * (k + r * W));
      const std::uint64_t word = S::terngrad_row(t, x);
      std::memcpy(codes + k / 4, &word, 8);
    }
  }

  // Pass 2, ternary-ef: nonzero iff |x| > 0 && |x| >= thr[block] (= scale·0.5).
  static void ternary_ef_codes(const std::uint8_t* xs, const float* thr, std::size_t rows, unsigned row_shift,
                               std::uint8_t* codes) {
    for (std::size_t row = 0; row < rows; ++row) {
      const std::size_t k = row * kRow;
      F x[R];
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) x[r] = S::load_f32(xs + 4 * (k + r * W));
      const std::uint64_t word = S::ternary_ef_row(x, S::set1(thr[row >> row_shift]));
      std::memcpy(codes + k / 4, &word, 8);
    }
  }

  // Software prefetch of the next group's input, spread evenly over this group's work (the
  // hardware prefetcher alone leaves the compute-heavy Philox phase waiting on memory afterwards).
  struct Prefetcher {
    const std::uint8_t* p;
    std::size_t bytes;
    std::size_t rate;  // bytes per work unit, 16.16 fixed point
    std::size_t units = 0, done = 0;
    Prefetcher(const std::uint8_t* begin, std::size_t size, std::size_t total_units)
        : p(begin), bytes(size), rate(total_units ? (size << 16) / total_units + 1 : 0) {}
    void advance(std::size_t work) {
      units += work;
      const std::size_t target = smaller((units * rate) >> 16, bytes);
      for (; done < target; done += 64) __builtin_prefetch(p + done, 0, 3);
    }
  };

  // One group of n (<= G) elements starting at element g0 of the job; `in`/`res` point at its first
  // element and are readable (zero-padded) up to n rounded up to a row; codes receive whole rows.
  // Phases: Philox words for the whole group, then every block's scale, then every block's codes
  // (independent blocks overlap in the pipeline), all while prefetching the next group's input.
  template <Kind K, DType D, bool Res>
  static void encode_group(const EncodeJob& job, const PhiloxKeys& keys, const std::uint8_t* in, const float* res,
                           std::size_t n, std::size_t g0, std::uint8_t* codes, Scratch& s, NonFiniteTally& tally,
                           const std::uint8_t* prefetch, std::size_t prefetch_bytes) {
    constexpr std::size_t es = dtype_bytes(D);
    constexpr bool kDirect = D == DType::kF32 && !Res;
    constexpr bool kTernGrad = K == Kind::kTernGrad || K == Kind::kTernGradClip;
    constexpr unsigned kBits = K == Kind::kSignEf ? 1 : 2;
    constexpr std::size_t kPhiloxCost = 4;  // work units per element: Philox vs. a pass (rough timings)
    const std::size_t B = job.block_size;
    const unsigned shift = static_cast<unsigned>(__builtin_ctzll(B));
    const std::size_t passes = K == Kind::kSignEf ? 1 : 2;
    Prefetcher pf(prefetch, prefetch_bytes, n * (passes + (kTernGrad ? kPhiloxCost : 0)));
    std::size_t uoff = 0;
    if constexpr (kTernGrad) {
      const std::uint64_t e0 = job.element_offset + g0;
      uoff = static_cast<std::size_t>(e0 & 3u);
      const std::size_t quads = round_up((uoff + round_up(n, kRow) + 3) / 4, S::kPhiloxStep);
      for (std::size_t q = 0; q < quads; q += S::kPhiloxStep) {
        S::philox(s.u + 4 * q, (e0 >> 2) + q, S::kPhiloxStep, keys);
        pf.advance(4 * S::kPhiloxStep * kPhiloxCost);
      }
    }
    const std::size_t blocks = (n + B - 1) >> shift;
    for (std::size_t j = 0; j < blocks; ++j) {
      const std::size_t b0 = j << shift;
      const std::size_t m = smaller(B, n - b0);
      const float scale = block_scale<K, D, Res>(job, in + b0 * es, Res ? res + b0 : nullptr, s.x + b0, m,
                                                 round_up(m, kRow), g0 + b0, codes + b0 * kBits / 8, tally);
      store_float(job.scales + 4 * ((g0 >> shift) + j), scale);
      if constexpr (kTernGrad) {
        s.folded[j] = !(scale > 0.0f && scale < 0x1p-94f);
        s.mult[j] = s.folded[j] ? scale * S::kUScale : scale;
      } else {
        s.mult[j] = scale * 0.5f;  // ternary-ef's threshold
      }
      pf.advance(m);
    }
    if constexpr (K == Kind::kSignEf) return;
    const std::uint8_t* xs = kDirect ? in : reinterpret_cast<const std::uint8_t*>(s.x);
    const std::size_t rows = round_up(n, kRow) / kRow;
    const unsigned row_shift = shift - kRowShift;  // log2(rows per block)
    if constexpr (kTernGrad)
      terngrad_codes(xs, s.u + uoff, s.mult, s.folded, rows, row_shift, codes);
    else
      ternary_ef_codes(xs, s.mult, rows, row_shift, codes);
    pf.advance(n);
  }

  template <Kind K, DType D, bool Res>
  static NonFiniteTally encode_scaled(const EncodeJob& job) {
    constexpr std::size_t es = dtype_bytes(D);
    constexpr unsigned kBits = K == Kind::kSignEf ? 1 : 2;
    NonFiniteTally tally;
    const PhiloxKeys keys = make_philox_keys(job.seed, job.stream);
    const std::size_t B = job.block_size;
    const std::size_t G = B > kGroup ? B : kGroup;
    const auto* in = static_cast<const std::uint8_t*>(job.input);
    Scratch s;
    for (std::size_t g0 = 0; g0 < job.count; g0 += G) {
      const std::size_t n = smaller(G, job.count - g0);
      if (n == G) {
        const std::size_t next = smaller(G, job.count - g0 - n);
        encode_group<K, D, Res>(job, keys, in + g0 * es, Res ? job.residual + g0 : nullptr, n, g0,
                                job.payload + g0 * kBits / 8, s, tally, in + (g0 + n) * es, next * es);
        continue;
      }
      // The partial last group: stage its input (and residual, in s.x, which pass 1 overwrites
      // element by element with x) into zero-padded buffers, and its codes into s.codes.
      const std::size_t npad = round_up(n, kRow);
      std::memset(s.in, 0, npad * es);
      std::memcpy(s.in, in + g0 * es, n * es);
      if constexpr (Res) {
        std::memset(s.x, 0, npad * sizeof(float));
        std::memcpy(s.x, job.residual + g0, n * sizeof(float));
      }
      encode_group<K, D, Res>(job, keys, s.in, Res ? s.x : nullptr, n, g0, s.codes, s, tally, nullptr, 0);
      std::memcpy(job.payload + g0 * kBits / 8, s.codes, (n * kBits + 7) / 8);
    }
    return tally;
  }

  template <DType D, bool Res>
  static NonFiniteTally encode_typed(const EncodeJob& job) {
    switch (job.codec) {
      case Codec::kFp32: return encode_cast<D, Res, Codec::kFp32>(job);
      case Codec::kFp16: return encode_cast<D, Res, Codec::kFp16>(job);
      case Codec::kBf16: return encode_cast<D, Res, Codec::kBf16>(job);
      case Codec::kTernGrad:
        return job.clip ? encode_scaled<Kind::kTernGradClip, D, Res>(job) : encode_scaled<Kind::kTernGrad, D, Res>(job);
      case Codec::kTernaryEf: return encode_scaled<Kind::kTernaryEf, D, Res>(job);
      case Codec::kSignEf: return encode_scaled<Kind::kSignEf, D, Res>(job);
    }
    return {};
  }

  static NonFiniteTally encode(const EncodeJob& job) {
    const bool res = job.residual != nullptr;
    switch (job.dtype) {
      case DType::kF32: return res ? encode_typed<DType::kF32, true>(job) : encode_typed<DType::kF32, false>(job);
      case DType::kF16: return res ? encode_typed<DType::kF16, true>(job) : encode_typed<DType::kF16, false>(job);
      case DType::kBf16: return res ? encode_typed<DType::kBf16, true>(job) : encode_typed<DType::kBf16, false>(job);
    }
    return {};
  }

  // ------------------------------------------------------------------------------------------------
  // Decode. Rows of 32 elements (a block holds whole rows; only the very last row can be partial and
  // is staged through zero-padded locals). A sink consumes each row's decoded vectors.

  static constexpr unsigned code_bits(Codec c) {
    return c == Codec::kFp32 ? 32 : (c == Codec::kFp16 || c == Codec::kBf16) ? 16 : c == Codec::kSignEf ? 1 : 2;
  }

  template <Codec C>
  static void row_values(const std::uint8_t* p, float scale, F* v, DecodeTally& t) {
    if constexpr (C == Codec::kFp32 || C == Codec::kFp16 || C == Codec::kBf16) {
      constexpr DType kType = C == Codec::kFp32 ? DType::kF32 : C == Codec::kFp16 ? DType::kF16 : DType::kBf16;
      std::uint32_t bad = 0;
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        v[r] = load<kType>(p + r * W * dtype_bytes(kType));
        bad |= S::nonfinite(v[r]) << (r * W);
      }
      if (__builtin_expect(bad != 0, 0)) {  // NaN/Inf cast values are invalid codes, decoded as +0.0f
        t.invalid_codes += static_cast<std::size_t>(__builtin_popcount(bad));
#pragma GCC unroll 4
        for (std::size_t r = 0; r < R; ++r) v[r] = S::zero_lanes(v[r], bad >> (r * W));
      }
    } else if constexpr (C == Codec::kSignEf) {
      std::uint32_t w;
      std::memcpy(&w, p, 4);
      const F s = S::set1(scale);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) v[r] = S::sign(w >> (r * W), s);
    } else {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      t.invalid_codes += invalid_ternary(w);
      const F s = S::set1(scale);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) v[r] = S::ternary(static_cast<std::uint32_t>(w >> (2 * r * W)), s);
    }
  }

  template <Codec C, class Sink>
  static DecodeTally decode_rows(const DecodeJob& job, Sink& sink) {
    constexpr unsigned kBits = code_bits(C);
    constexpr bool kScaled = C == Codec::kTernGrad || C == Codec::kTernaryEf || C == Codec::kSignEf;
    DecodeTally t;
    const unsigned shift = kScaled ? static_cast<unsigned>(__builtin_ctz(job.block_size)) : 0u;
    const std::size_t n = job.count;
    std::size_t i = 0;
    F v[R];
    for (; i + kRow <= n; i += kRow) {
      const float scale = kScaled ? load_float(job.scales + 4 * (i >> shift)) : 0.0f;
      row_values<C>(job.payload + i * kBits / 8, scale, v, t);
      sink.full(i, v, t);
    }
    if (i < n) {
      const std::size_t r = n - i;
      alignas(64) std::uint8_t stage[kRow * 4] = {};
      std::memcpy(stage, job.payload + i * kBits / 8, (r * kBits + 7) / 8);
      const float scale = kScaled ? load_float(job.scales + 4 * (i >> shift)) : 0.0f;
      row_values<C>(stage, scale, v, t);
      sink.tail(i, r, v, t);
    }
    return t;
  }

  template <DType O>
  struct OutSink {
    std::uint8_t* out;
    void full(std::size_t i, const F* v, DecodeTally& t) {
      constexpr std::size_t os = dtype_bytes(O);
      std::uint32_t ovf = 0;
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) ovf |= store<O>(out + (i + r * W) * os, v[r]) << (r * W);
      t.overflows += static_cast<std::size_t>(__builtin_popcount(ovf));
    }
    void tail(std::size_t i, std::size_t n, const F* v, DecodeTally& t) {
      constexpr std::size_t os = dtype_bytes(O);
      alignas(64) std::uint8_t stage[kRow * 4];
      std::uint32_t ovf = 0;
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) ovf |= store<O>(stage + r * W * os, v[r]) << (r * W);
      t.overflows += static_cast<std::size_t>(__builtin_popcount(ovf & lane_mask(n)));
      std::memcpy(out + i * os, stage, n * os);
    }
  };

  // fp32 output written with non-temporal stores: a large decode's output is not read again soon
  // (the trainer reads it after the whole operation), so writing around the cache saves the read
  // for ownership of every line and keeps the engine's chunk buffers cached. Same values as OutSink.
  struct StreamSink {
    std::uint8_t* out;  // S::kStreamAlign-aligned
    void full(std::size_t i, const F* v, DecodeTally&) {
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) S::stream_f32(out + (i + r * W) * 4, v[r]);
    }
    void tail(std::size_t i, std::size_t n, const F* v, DecodeTally& t) {
      OutSink<DType::kF32> plain{out};
      plain.tail(i, n, v, t);
    }
  };

  struct AccSink {
    float* acc;
    static void rows(float* a, const F* v) {
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) S::store_f32(a + r * W, S::add(S::load_f32(a + r * W), v[r]));
    }
    void full(std::size_t i, const F* v, DecodeTally&) { rows(acc + i, v); }
    void tail(std::size_t i, std::size_t n, const F* v, DecodeTally&) {
      alignas(64) float stage[kRow] = {};
      std::memcpy(stage, acc + i, n * sizeof(float));
      rows(stage, v);
      std::memcpy(acc + i, stage, n * sizeof(float));
    }
  };

  template <DType D>
  struct ResidualSink {
    const std::uint8_t* in;
    float* res;
    static void rows(const std::uint8_t* x_in, float* e, const F* v) {
      constexpr std::size_t es = dtype_bytes(D);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const F x = S::add(load<D>(x_in + r * W * es), S::load_f32(e + r * W));
        S::store_f32(e + r * W, S::sub(x, v[r]));
      }
    }
    void full(std::size_t i, const F* v, DecodeTally&) { rows(in + i * dtype_bytes(D), res + i, v); }
    void tail(std::size_t i, std::size_t n, const F* v, DecodeTally&) {
      alignas(64) std::uint8_t sin[kRow * 4] = {};
      alignas(64) float sres[kRow] = {};
      std::memcpy(sin, in + i * dtype_bytes(D), n * dtype_bytes(D));
      std::memcpy(sres, res + i, n * sizeof(float));
      rows(sin, sres, v);
      std::memcpy(res + i, sres, n * sizeof(float));
    }
  };

  template <class Sink>
  static DecodeTally decode_any(const DecodeJob& job, Sink& sink) {
    switch (job.codec) {
      case Codec::kFp32: return decode_rows<Codec::kFp32>(job, sink);
      case Codec::kFp16: return decode_rows<Codec::kFp16>(job, sink);
      case Codec::kBf16: return decode_rows<Codec::kBf16>(job, sink);
      case Codec::kTernGrad: return decode_rows<Codec::kTernGrad>(job, sink);
      case Codec::kTernaryEf: return decode_rows<Codec::kTernaryEf>(job, sink);
      case Codec::kSignEf: return decode_rows<Codec::kSignEf>(job, sink);
    }
    return {};
  }

  static DecodeTally decode(const DecodeJob& job, void* out, DType out_dtype) {
    auto* o = static_cast<std::uint8_t*>(out);
    switch (out_dtype) {
      case DType::kF32: {
        if (job.count * 4 >= kStreamMinBytes && reinterpret_cast<std::uintptr_t>(o) % S::kStreamAlign == 0) {
          StreamSink sink{o};
          const DecodeTally t = decode_any(job, sink);
          S::stream_fence();  // the stores are visible to whoever the caller hands the buffer to next
          return t;
        }
        OutSink<DType::kF32> sink{o};
        return decode_any(job, sink);
      }
      case DType::kF16: {
        OutSink<DType::kF16> sink{o};
        return decode_any(job, sink);
      }
      case DType::kBf16: {
        OutSink<DType::kBf16> sink{o};
        return decode_any(job, sink);
      }
    }
    return {};
  }

  static DecodeTally decode_accumulate(const DecodeJob& job, float* acc) {
    AccSink sink{acc};
    return decode_any(job, sink);
  }

  static DecodeTally residual_update(const DecodeJob& job, const void* input, DType dtype, float* residual) {
    const auto* in = static_cast<const std::uint8_t*>(input);
    switch (dtype) {
      case DType::kF32: {
        ResidualSink<DType::kF32> sink{in, residual};
        return decode_any(job, sink);
      }
      case DType::kF16: {
        ResidualSink<DType::kF16> sink{in, residual};
        return decode_any(job, sink);
      }
      case DType::kBf16: {
        ResidualSink<DType::kBf16> sink{in, residual};
        return decode_any(job, sink);
      }
    }
    return {};
  }
};

}  // namespace
}  // namespace tern::kernels::cpu
