// Every SIMD implementation (AVX2, AVX-512) must give exactly the scalar reference's bytes, floats,
// counts and messages: chunks, decoded values in every output dtype, decode_accumulate and
// residual_update results, non-finite reports and invalid-code / overflow tallies. Inputs are
// adversarial (zeros of both signs, subnormals, huge and tiny blocks, exact fp16/bf16 rounding ties,
// values at the fp16 overflow threshold) and every pointer is misaligned.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "tern/common/aligned_buffer.h"
#include "tern/kernels/codec.h"
#include "tern/kernels/float16.h"
#include "tern/kernels/wire_format.h"

namespace tern::kernels {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr Codec kCodecs[] = {Codec::kFp32, Codec::kFp16, Codec::kBf16,
                             Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf};
constexpr DType kDTypes[] = {DType::kF32, DType::kF16, DType::kBf16};
constexpr std::uint32_t kBlocks[] = {32, 128, 4096};
constexpr std::size_t kSizes[] = {0, 1, 2, 3, 5, 31, 32, 33, 63, 64, 65, 127, 129, 1000, 4097, 100003};
constexpr std::uint64_t kOffsets[] = {0, 5, 128 * 7 + 3, 0xFFFFFFFFFFFFFFFFull - 37};

std::vector<CpuIsa> simd_isas() {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : supported_cpu_isas())
    if (isa != CpuIsa::kScalar) isas.push_back(isa);
  return isas;
}

#define TERN_SKIP_WITHOUT_SIMD()                                                                   \
  do {                                                                                             \
    if (simd_isas().empty())                                                                       \
      GTEST_SKIP() << "only the scalar implementation is available (CPU without AVX2/AVX-512 or a " \
                      "build without them): nothing to compare";                                   \
  } while (0)

// Restores the implementation that was active when the test started.
class IsaGuard {
 public:
  IsaGuard() : saved_(active_cpu_isa()) {}
  ~IsaGuard() { EXPECT_TRUE(set_cpu_isa(saved_).is_ok()); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;

 private:
  CpuIsa saved_;
};

void use(CpuIsa isa) { ASSERT_TRUE(set_cpu_isa(isa).is_ok()) << cpu_isa_name(isa); }

std::uint32_t word(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_word(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---------------------------------------------------------------------------------------------------
// Adversarial data. Values come in runs of 32 with their own magnitude (so whole blocks can be tiny,
// subnormal or huge: terngrad's scale takes different paths there), sprinkled with special values.

enum class Range {
  kFp16Safe,  // |x| < 65520: the fp16 cast never overflows
  kWide,      // also values up to 1e30 and exactly at the fp16 overflow threshold
};

float special_value(std::mt19937_64& rng, Range range) {
  const bool neg = (rng() & 1) != 0;
  float v = 0.0f;
  switch (rng() % 9) {
    case 0: v = 0.0f; break;
    case 1: v = from_word(static_cast<std::uint32_t>(rng() % 0x7FFFFF) + 1); break;  // fp32 subnormal
    case 2: {  // exactly halfway between two fp16 values (normal or subnormal range)
      const std::uint32_t h = static_cast<std::uint32_t>(rng() % 0x7BFF);
      if (h < 0x400) {
        v = (static_cast<float>(h) + 0.5f) * 0x1p-24f;
      } else {
        v = from_word(word(fp16_to_float(static_cast<std::uint16_t>(h))) | 0x1000u);
      }
      break;
    }
    case 3: {  // exactly halfway between two bf16 values
      std::uint32_t u = static_cast<std::uint32_t>(rng()) & 0x7FFF0000u;
      if ((u & 0x7F800000u) == 0x7F800000u) u &= 0x3FFF0000u;
      v = from_word(u | 0x8000u);
      break;
    }
    case 4: {  // around the fp16 overflow threshold (65520 rounds to Inf)
      static constexpr float kSafe[] = {65504.0f, 65519.0f, 65519.996f, 65488.0f, 32768.5f};
      static constexpr float kOver[] = {65520.0f, 65536.0f, 1e5f};
      if (range == Range::kWide && rng() % 3 == 0)
        v = kOver[rng() % 3];
      else
        v = kSafe[rng() % 5];
      break;
    }
    case 5: v = range == Range::kWide ? from_word(0x7E000000u + static_cast<std::uint32_t>(rng() % 0x1000000)) : 3e4f;
      break;
    case 6: v = 0x1p-126f * static_cast<float>(1 + rng() % 1000); break;  // small normals
    case 7: v = static_cast<float>(1u << (rng() % 15)); break;           // powers of two
    default: v = from_word(static_cast<std::uint32_t>(rng() % 0x400) << 13); break;  // fp16 subnormal grid
  }
  return neg ? -v : v;
}

std::vector<float> tricky(std::size_t n, std::uint64_t seed, Range range = Range::kFp16Safe) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  static constexpr float kMagnitudes[] = {1.0f, 1e-3f, 1e3f, 0x1p-110f, 0x1p-140f, 3e4f, 0x1p-60f, 1e30f};
  std::vector<float> v(n);
  float magnitude = 1.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 32 == 0) {
      magnitude = kMagnitudes[rng() % (range == Range::kWide ? 8 : 7)];
      if (magnitude == 3e4f || magnitude == 1e30f) magnitude *= 0.25f;
    }
    const unsigned pick = static_cast<unsigned>(rng() % 100);
    if (pick < 70) {
      v[i] = normal(rng) * magnitude;
    } else if (pick < 75) {
      v[i] = 0.0f;
    } else if (pick < 80) {
      v[i] = -0.0f;
    } else {
      v[i] = special_value(rng, range);
    }
    if (range == Range::kFp16Safe && !(v[i] > -65520.0f && v[i] < 65520.0f)) v[i] = 1.0f;
  }
  return v;
}

// `values` as raw bytes of `dtype` (fp16/bf16 rounded to nearest even), starting `offset` bytes into
// the returned buffer.
Bytes as_bytes(const std::vector<float>& values, DType dtype, std::size_t offset) {
  const std::size_t es = dtype_size(dtype);
  Bytes out(offset + values.size() * es + 1, 0xA5);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(out.data() + offset + 4 * i, &values[i], 4);
    } else {
      const std::uint16_t h = dtype == DType::kF16 ? float_to_fp16(values[i]) : float_to_bf16(values[i]);
      std::memcpy(out.data() + offset + 2 * i, &h, 2);
    }
  }
  return out;
}

// A float buffer whose data starts one float into its storage.
struct Floats {
  std::vector<float> storage;
  float* data() { return storage.data() + 1; }
  const float* data() const { return storage.data() + 1; }
  std::size_t size() const { return storage.size() - 2; }
  explicit Floats(const std::vector<float>& v) : storage(v.size() + 2, -7.5f) {
    std::copy(v.begin(), v.end(), storage.begin() + 1);
  }
};

// memcmp that accepts empty (possibly null) ranges.
bool same_bytes(const void* a, const void* b, std::size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; }

std::string first_difference(const std::uint8_t* a, const std::uint8_t* b, std::size_t n, std::size_t unit) {
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) {
      std::string s = "first difference at byte " + std::to_string(i) + " (element " + std::to_string(i / unit) + "):";
      char buf[8];
      for (std::size_t k = i / unit * unit; k < (i / unit + 1) * unit && k < n; ++k) {
        std::snprintf(buf, sizeof buf, " %02x/%02x", a[k], b[k]);
        s += buf;
      }
      return s + " (scalar/simd)";
    }
  }
  return {};
}

std::string describe(Codec codec, DType dtype, std::size_t n, std::uint32_t block, bool residual, bool clip,
                     std::uint64_t offset) {
  return std::string(codec_name(codec)) + " in=" + std::string(dtype_name(dtype)) + " n=" + std::to_string(n) +
         " block=" + std::to_string(block) + (residual ? " +residual" : "") + (clip ? " clip" : "") +
         " element_offset=" + std::to_string(offset);
}

// ---------------------------------------------------------------------------------------------------
// One encode with all pointers misaligned; the chunk lands `out_offset` bytes into a guarded buffer.

struct Encoded {
  Status status;
  EncodeReport report;
  Bytes chunk;
};

Encoded encode_on(CpuIsa isa, const Bytes& input, std::size_t in_offset, DType dtype, std::size_t n,
                  const float* residual, const EncodeOptions& o, std::size_t out_offset) {
  use(isa);
  Encoded e;
  const auto size = encoded_size(o.codec, o.block_size, n);
  EXPECT_TRUE(size.is_ok());
  Bytes out(out_offset + *size + 16, 0xCD);
  e.status = encode(n ? input.data() + in_offset : nullptr, dtype, n, residual, o,
                    std::span<std::uint8_t>(out.data() + out_offset, *size), &e.report);
  for (std::size_t i = 0; i < out_offset; ++i) EXPECT_EQ(out[i], 0xCD) << "wrote before the chunk";
  for (std::size_t i = out_offset + *size; i < out.size(); ++i) EXPECT_EQ(out[i], 0xCD) << "wrote past the chunk";
  e.chunk.assign(out.begin() + static_cast<long>(out_offset), out.begin() + static_cast<long>(out_offset + *size));
  return e;
}

void expect_same_status(const Status& want, const Status& got, const std::string& what) {
  EXPECT_EQ(want.code(), got.code()) << what << "\n scalar: " << want.to_string() << "\n simd:   " << got.to_string();
  EXPECT_EQ(want.message(), got.message()) << what;
}

// Decodes `chunk` on `isa` in every way the API offers and returns everything observable.
struct Decoded {
  Status status[3];
  Bytes out[3];
  Status acc_status;
  std::vector<float> acc;
  Status res_status;
  std::vector<float> res;
};

Decoded decode_on(CpuIsa isa, const Bytes& chunk, std::size_t n, const std::vector<float>& acc0, const Bytes& input,
                  std::size_t in_offset, DType dtype, const std::vector<float>& res0, std::size_t off) {
  use(isa);
  Decoded d;
  // The chunk itself at an odd address.
  Bytes shifted(chunk.size() + off);
  std::memcpy(shifted.data() + off, chunk.data(), chunk.size());
  const std::span<const std::uint8_t> view(shifted.data() + off, chunk.size());
  for (DType out : kDTypes) {
    const auto k = static_cast<unsigned>(out);
    const std::size_t os = dtype_size(out);
    Bytes buf(off + n * os + 8, 0xEE);
    d.status[k] = decode(view, buf.data() + off, out, n);
    d.out[k].assign(buf.begin() + static_cast<long>(off), buf.begin() + static_cast<long>(off + n * os));
    for (std::size_t i = off + n * os; i < buf.size(); ++i) EXPECT_EQ(buf[i], 0xEE) << "decode wrote past the end";
  }
  Floats acc(acc0);
  d.acc_status = decode_accumulate(view, acc.data(), n);
  EXPECT_EQ(acc.storage.front(), -7.5f);
  EXPECT_EQ(acc.storage.back(), -7.5f);
  d.acc.assign(acc.data(), acc.data() + n);
  if (codec_uses_error_feedback(parse_chunk(view)->header.codec)) {
    Floats res(res0);
    d.res_status = residual_update(view, n ? input.data() + in_offset : nullptr, dtype, n, res.data());
    EXPECT_EQ(res.storage.back(), -7.5f);
    d.res.assign(res.data(), res.data() + n);
  }
  return d;
}

void expect_same_decoded(const Decoded& want, const Decoded& got, const std::string& what) {
  for (DType out : kDTypes) {
    const auto k = static_cast<unsigned>(out);
    const std::string w = what + " decode->" + std::string(dtype_name(out));
    expect_same_status(want.status[k], got.status[k], w);
    if (want.status[k].is_ok() && got.status[k].is_ok()) {
      ASSERT_EQ(want.out[k].size(), got.out[k].size());
      EXPECT_EQ(want.out[k], got.out[k]) << w << ": "
                                         << first_difference(want.out[k].data(), got.out[k].data(),
                                                             want.out[k].size(), dtype_size(out));
    }
  }
  expect_same_status(want.acc_status, got.acc_status, what + " decode_accumulate");
  if (want.acc_status.is_ok() && got.acc_status.is_ok()) {
    EXPECT_TRUE(same_bytes(want.acc.data(), got.acc.data(), want.acc.size() * 4))
        << what << " decode_accumulate: "
        << first_difference(reinterpret_cast<const std::uint8_t*>(want.acc.data()),
                            reinterpret_cast<const std::uint8_t*>(got.acc.data()), want.acc.size() * 4, 4);
  }
  expect_same_status(want.res_status, got.res_status, what + " residual_update");
  if (want.res_status.is_ok() && got.res_status.is_ok()) {
    ASSERT_EQ(want.res.size(), got.res.size());
    EXPECT_TRUE(same_bytes(want.res.data(), got.res.data(), want.res.size() * 4))
        << what << " residual_update: "
        << first_difference(reinterpret_cast<const std::uint8_t*>(want.res.data()),
                            reinterpret_cast<const std::uint8_t*>(got.res.data()), want.res.size() * 4, 4);
  }
}

// Encodes on scalar and on `isa`, compares, then decodes the scalar chunk both ways and compares.
void check_roundtrip(CpuIsa isa, const std::vector<float>& x, DType dtype, const std::vector<float>* residual,
                     const EncodeOptions& o, std::uint64_t seed) {
  const std::size_t n = x.size();
  const std::size_t in_off = 1 + seed % 3, out_off = 1 + (seed / 3) % 3, dec_off = 1 + (seed / 9) % 3;
  const Bytes input = as_bytes(x, dtype, in_off);
  const std::string what = std::string(cpu_isa_name(isa)) + " " +
                           describe(o.codec, dtype, n, o.block_size, residual != nullptr, o.clip, o.element_offset);
  std::vector<float> res0 = residual ? *residual : tricky(n, seed ^ 0x5EED, Range::kFp16Safe);
  const Floats res(res0);
  const float* rp = residual ? res.data() : nullptr;

  const Encoded want = encode_on(CpuIsa::kScalar, input, in_off, dtype, n, rp, o, out_off);
  const Encoded got = encode_on(isa, input, in_off, dtype, n, rp, o, out_off);
  expect_same_status(want.status, got.status, what + " encode");
  EXPECT_EQ(want.report.nonfinite_count, got.report.nonfinite_count) << what;
  EXPECT_EQ(want.report.first_nonfinite, got.report.first_nonfinite) << what;
  EXPECT_EQ(want.report.bytes, got.report.bytes) << what;
  if (!want.status.is_ok()) return;  // the chunk bytes are unspecified
  ASSERT_EQ(want.chunk, got.chunk) << what << " encode: "
                                   << first_difference(want.chunk.data(), got.chunk.data(), want.chunk.size(), 1);

  const std::vector<float> acc0 = tricky(n, seed ^ 0xACC, Range::kFp16Safe);
  const Decoded dw = decode_on(CpuIsa::kScalar, want.chunk, n, acc0, input, in_off, dtype, res0, dec_off);
  const Decoded dg = decode_on(isa, want.chunk, n, acc0, input, in_off, dtype, res0, dec_off);
  expect_same_decoded(dw, dg, what);
}

// ---------------------------------------------------------------------------------------------------

TEST(SimdEquivalence, CastCodecs) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  std::uint64_t seed = 1;
  for (CpuIsa isa : simd_isas())
    for (Codec codec : {Codec::kFp32, Codec::kFp16, Codec::kBf16})
      for (DType dtype : kDTypes)
        for (std::size_t n : kSizes)
          for (Range range : {Range::kFp16Safe, Range::kWide}) {
            EncodeOptions o;
            o.codec = codec;
            ++seed;
            check_roundtrip(isa, tricky(n, seed, range), dtype, nullptr, o, seed);
            if (::testing::Test::HasFatalFailure()) return;
          }
}

TEST(SimdEquivalence, TernGrad) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  std::uint64_t seed = 1000;
  for (CpuIsa isa : simd_isas())
    for (DType dtype : kDTypes)
      for (std::uint32_t block : kBlocks)
        for (bool clip : {false, true})
          for (std::size_t n : kSizes) {
            EncodeOptions o;
            o.codec = Codec::kTernGrad;
            o.block_size = block;
            o.clip = clip;
            o.clip_sigmas = (seed & 1) ? 2.5f : 0.75f;
            o.seed = 0x1234567890ABCDEFull * (seed + 1);
            o.stream = seed * 0x9E3779B97F4A7C15ull;
            o.element_offset = kOffsets[seed % 4];
            ++seed;
            check_roundtrip(isa, tricky(n, seed, (seed % 3) ? Range::kFp16Safe : Range::kWide), dtype, nullptr, o,
                            seed);
            if (::testing::Test::HasFatalFailure()) return;
          }
}

TEST(SimdEquivalence, ErrorFeedbackCodecs) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  std::uint64_t seed = 5000;
  for (CpuIsa isa : simd_isas())
    for (Codec codec : {Codec::kTernaryEf, Codec::kSignEf})
      for (DType dtype : kDTypes)
        for (std::uint32_t block : kBlocks)
          for (bool with_residual : {false, true})
            for (std::size_t n : kSizes) {
              EncodeOptions o;
              o.codec = codec;
              o.block_size = block;
              ++seed;
              const std::vector<float> e = tricky(n, seed * 7, Range::kFp16Safe);
              check_roundtrip(isa, tricky(n, seed, (seed % 3) ? Range::kFp16Safe : Range::kWide), dtype,
                              with_residual ? &e : nullptr, o, seed);
              if (::testing::Test::HasFatalFailure()) return;
            }
}

// Degenerate blocks: all +0, all -0, subnormals only, one huge element among tiny ones, one sign.
TEST(SimdEquivalence, DegenerateBlocks) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  std::uint64_t seed = 9000;
  for (CpuIsa isa : simd_isas())
    for (Codec codec : {Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf})
      for (int pattern = 0; pattern < 5; ++pattern)
        for (std::size_t n : {std::size_t{1}, std::size_t{33}, std::size_t{300}}) {
          std::vector<float> x(n, 0.0f);
          for (std::size_t i = 0; i < n; ++i) {
            if (pattern == 1) x[i] = -0.0f;
            if (pattern == 2) x[i] = 0x1p-149f * static_cast<float>(i % 3);
            if (pattern == 3) x[i] = i == n / 2 ? 3e38f : 1e-30f;
            if (pattern == 4) x[i] = -static_cast<float>(i + 1);
          }
          EncodeOptions o;
          o.codec = codec;
          o.block_size = 32;
          o.seed = ++seed;
          for (bool clip : {false, true}) {
            o.clip = clip && codec == Codec::kTernGrad;
            for (DType dtype : kDTypes) check_roundtrip(isa, x, dtype, nullptr, o, seed);
          }
        }
}

// NaN/±Inf at random places (in the input or in the residual) and fp16/bf16 cast overflows: the
// reports (count, first index) and messages must match; the chunk bytes are unspecified.
TEST(SimdEquivalence, NonFiniteReports) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), from_word(0xFF800001u) /* -sNaN */,
                            65520.0f, 3.4e38f};
  std::uint64_t seed = 20000;
  for (CpuIsa isa : simd_isas())
    for (Codec codec : kCodecs)
      for (DType dtype : kDTypes)
        for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{32}, std::size_t{100}, std::size_t{4097},
                              std::size_t{9000}})
          for (int trial = 0; trial < 4; ++trial) {
            ++seed;
            std::mt19937_64 rng(seed);
            std::vector<float> x = tricky(n, seed);
            const bool ef = codec_uses_error_feedback(codec);
            std::vector<float> e = tricky(n, seed + 1);
            const int injections = 1 + static_cast<int>(rng() % 3);
            for (int k = 0; k < injections; ++k) {
              const float v = specials[rng() % 6];
              const std::size_t at = static_cast<std::size_t>(rng() % n);
              if (ef && (rng() & 1))
                e[at] = v;
              else
                x[at] = v;
            }
            EncodeOptions o;
            o.codec = codec;
            o.block_size = 32u << (seed % 3);
            o.clip = codec == Codec::kTernGrad && (seed & 1);
            const std::size_t in_off = 1 + seed % 3;
            const Bytes input = as_bytes(x, dtype, in_off);
            const Floats res(e);
            const float* rp = ef ? res.data() : nullptr;
            const Encoded want = encode_on(CpuIsa::kScalar, input, in_off, dtype, n, rp, o, 3);
            const Encoded got = encode_on(isa, input, in_off, dtype, n, rp, o, 3);
            const std::string what = std::string(cpu_isa_name(isa)) + " " +
                                     describe(codec, dtype, n, o.block_size, ef, o.clip, 0);
            expect_same_status(want.status, got.status, what);
            EXPECT_EQ(want.report.nonfinite_count, got.report.nonfinite_count) << what;
            EXPECT_EQ(want.report.first_nonfinite, got.report.first_nonfinite) << what;
            if (want.status.is_ok() && got.status.is_ok()) {
              EXPECT_EQ(want.chunk, got.chunk) << what;
            }
          }
}

// Code sections with 0b10 ternary codes and cast sections with NaN/Inf: the same count (in the
// message) from every decoder. Tallies are also compared directly on the kernel tables, where an
// invalid-code count and an overflow count can both be observed.
Bytes corrupt(const Bytes& chunk, std::mt19937_64& rng, std::size_t* changes) {
  Bytes c = chunk;
  const auto view = parse_chunk(chunk);
  EXPECT_TRUE(view.is_ok());
  const std::size_t codes = static_cast<std::size_t>(view->codes - chunk.data());
  const std::size_t n = view->header.count;
  const Codec codec = view->header.codec;
  *changes = 0;
  const std::size_t hits = 1 + static_cast<std::size_t>(rng() % (n / 16 + 1));
  for (std::size_t k = 0; k < hits; ++k) {
    const std::size_t i = static_cast<std::size_t>(rng() % n);
    if (codec == Codec::kTernGrad || codec == Codec::kTernaryEf) {
      std::uint8_t& b = c[codes + i / 4];
      b = static_cast<std::uint8_t>((b & ~(3u << (2 * (i % 4)))) | (2u << (2 * (i % 4))));
    } else if (codec == Codec::kFp32) {
      const float bad[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
                           from_word(0x7F800001u)};
      std::memcpy(&c[codes + 4 * i], &bad[rng() % 3], 4);
    } else if (codec == Codec::kFp16 || codec == Codec::kBf16) {
      const std::uint16_t exp = codec == Codec::kFp16 ? 0x7C00 : 0x7F80;
      const std::uint16_t h = static_cast<std::uint16_t>(exp | (rng() & 1 ? 0x8000 : 0) | (rng() & 1 ? 1 : 0));
      std::memcpy(&c[codes + 2 * i], &h, 2);
    }
    ++*changes;
  }
  return c;
}

TEST(SimdEquivalence, InvalidCodesAndOverflowsAreCountedAlike) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  std::uint64_t seed = 40000;
  for (CpuIsa isa : simd_isas())
    for (Codec codec : {Codec::kTernGrad, Codec::kTernaryEf, Codec::kFp32, Codec::kFp16, Codec::kBf16})
      for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{64}, std::size_t{129}, std::size_t{5000}})
        for (int trial = 0; trial < 3; ++trial) {
          ++seed;
          std::mt19937_64 rng(seed);
          // Wide data (for terngrad: scales far beyond fp16's range) so that decoding into fp16
          // overflows too.
          const std::vector<float> x = tricky(n, seed, codec == Codec::kFp16 ? Range::kFp16Safe : Range::kWide);
          EncodeOptions o;
          o.codec = codec;
          o.block_size = 32;
          use(CpuIsa::kScalar);
          auto size = encoded_size(codec, 32, n);
          ASSERT_TRUE(size.is_ok());
          Bytes chunk(*size);
          const Status s = encode(x.data(), DType::kF32, n, nullptr, o, chunk);
          if (!s.is_ok()) continue;  // e.g. bf16 overflow of a wide value
          std::size_t changes = 0;
          const Bytes bad = corrupt(chunk, rng, &changes);
          const auto view = parse_chunk(bad);
          ASSERT_TRUE(view.is_ok()) << view.status().to_string();
          const std::vector<float> acc0 = tricky(n, seed + 3);
          const Bytes in = as_bytes(x, DType::kF32, 1);
          const std::string what = std::string(cpu_isa_name(isa)) + " corrupted " + std::string(codec_name(codec)) +
                                   " n=" + std::to_string(n);
          const Decoded dw = decode_on(CpuIsa::kScalar, bad, n, acc0, in, 1, DType::kF32, acc0, 2);
          const Decoded dg = decode_on(isa, bad, n, acc0, in, 1, DType::kF32, acc0, 2);
          expect_same_decoded(dw, dg, what);
          EXPECT_FALSE(dw.acc_status.is_ok()) << what << ": the corruption was not detected";

          // The kernel tables themselves, on the clean and on the corrupted chunk.
          const cpu::KernelTable* simd = isa == CpuIsa::kAvx512 ? cpu::avx512_kernels() : cpu::avx2_kernels();
          ASSERT_NE(simd, nullptr);
          for (const Bytes* c : {static_cast<const Bytes*>(&chunk), &bad}) {
            const auto v = parse_chunk(*c);
            ASSERT_TRUE(v.is_ok());
            const cpu::DecodeJob job{v->header.codec, v->header.block_size, v->header.count, v->scales, v->codes};
            for (DType out : kDTypes) {
              Bytes a(n * 4 + 4), b(n * 4 + 4);
              const cpu::DecodeTally tw = cpu::scalar_kernels().decode(job, a.data() + 1, out);
              const cpu::DecodeTally tg = simd->decode(job, b.data() + 1, out);
              EXPECT_EQ(tw.invalid_codes, tg.invalid_codes) << what << " -> " << dtype_name(out);
              EXPECT_EQ(tw.overflows, tg.overflows) << what << " -> " << dtype_name(out);
            }
            std::vector<float> a(acc0), b(acc0);
            const cpu::DecodeTally tw = cpu::scalar_kernels().decode_accumulate(job, a.data());
            const cpu::DecodeTally tg = simd->decode_accumulate(job, b.data());
            EXPECT_EQ(tw.invalid_codes, tg.invalid_codes) << what << " accumulate";
            EXPECT_EQ(tw.overflows, tg.overflows) << what << " accumulate";
            // Invalid codes decode as +0.0f: even the accumulators match.
            EXPECT_TRUE(same_bytes(a.data(), b.data(), 4 * n)) << what << " accumulate";
          }
          if (::testing::Test::HasFatalFailure()) return;
        }
}

// Chunks of a tensor encoded in pieces (each with its element_offset) on different ISAs must
// concatenate to the same codes as one scalar encode of the whole tensor.
TEST(SimdEquivalence, PiecewiseTernGradMatchesWholeScalarEncode) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  const std::size_t n = 10000;
  const std::vector<float> x = tricky(n, 77);
  EncodeOptions o;
  o.block_size = 64;
  o.seed = 99;
  o.stream = 3;
  o.element_offset = 1;  // not a multiple of 4: Philox quads straddle the pieces
  use(CpuIsa::kScalar);
  const Bytes whole = encode_on(CpuIsa::kScalar, as_bytes(x, DType::kF32, 0), 0, DType::kF32, n, nullptr, o, 0).chunk;
  const auto wv = parse_chunk(whole);
  ASSERT_TRUE(wv.is_ok());
  for (CpuIsa isa : simd_isas()) {
    Bytes codes, scales;
    for (std::size_t begin = 0; begin < n; begin += 64 * 37) {
      const std::size_t m = std::min<std::size_t>(64 * 37, n - begin);
      EncodeOptions p = o;
      p.element_offset = o.element_offset + begin;
      const std::vector<float> piece(x.begin() + static_cast<long>(begin), x.begin() + static_cast<long>(begin + m));
      const Encoded e = encode_on(isa, as_bytes(piece, DType::kF32, 2), 2, DType::kF32, m, nullptr, p, 1);
      ASSERT_TRUE(e.status.is_ok());
      const auto v = parse_chunk(e.chunk);
      ASSERT_TRUE(v.is_ok());
      scales.insert(scales.end(), v->scales, v->scales + 4 * v->layout.scale_count);
      codes.insert(codes.end(), v->codes, v->codes + v->layout.code_bytes);
    }
    EXPECT_TRUE(same_bytes(scales.data(), wv->scales, scales.size())) << cpu_isa_name(isa);
    ASSERT_EQ(codes.size(), wv->layout.code_bytes);
    EXPECT_TRUE(same_bytes(codes.data(), wv->codes, codes.size())) << cpu_isa_name(isa);
  }
}

// Raw fp16/bf16 bit patterns as inputs (every finite pattern class, including subnormals), for the
// widening paths.
TEST(SimdEquivalence, RawHalfPrecisionInputs) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  for (CpuIsa isa : simd_isas())
    for (DType dtype : {DType::kF16, DType::kBf16}) {
      std::vector<std::uint16_t> all;
      const std::uint16_t exp = dtype == DType::kF16 ? 0x7C00 : 0x7F80;
      for (std::uint32_t h = 0; h < 0x10000; ++h)
        if ((h & exp) != exp) all.push_back(static_cast<std::uint16_t>(h));
      Bytes input(all.size() * 2 + 1);
      std::memcpy(input.data() + 1, all.data(), all.size() * 2);
      const std::size_t n = all.size();
      for (Codec codec : kCodecs) {
        EncodeOptions o;
        o.codec = codec;
        o.block_size = 256;
        const Encoded want = encode_on(CpuIsa::kScalar, input, 1, dtype, n, nullptr, o, 2);
        const Encoded got = encode_on(isa, input, 1, dtype, n, nullptr, o, 2);
        const std::string what = std::string(cpu_isa_name(isa)) + " all finite " + std::string(dtype_name(dtype)) +
                                 " -> " + std::string(codec_name(codec));
        expect_same_status(want.status, got.status, what);
        EXPECT_EQ(want.report.nonfinite_count, got.report.nonfinite_count) << what;
        EXPECT_EQ(want.report.first_nonfinite, got.report.first_nonfinite) << what;
        if (!want.status.is_ok()) continue;
        EXPECT_EQ(want.chunk, got.chunk) << what;
        const std::vector<float> acc0 = tricky(n, 5);
        const Decoded dw = decode_on(CpuIsa::kScalar, want.chunk, n, acc0, input, 1, dtype, acc0, 3);
        const Decoded dg = decode_on(isa, want.chunk, n, acc0, input, 1, dtype, acc0, 3);
        expect_same_decoded(dw, dg, what);
      }
    }
}

// Large fp32 decodes into 64-byte-aligned memory take the non-temporal store path (the other
// tests' outputs are misaligned or small); it must write exactly the scalar bytes and nothing past
// the end, including the tail rows that it stores normally.
TEST(SimdEquivalence, LargeAlignedFp32DecodeStreamsTheSameBytes) {
  TERN_SKIP_WITHOUT_SIMD();
  IsaGuard guard;
  const std::size_t n = (1u << 17) + 37;  // 512 KiB + a partial row of fp32 output
  std::uint64_t seed = 12000;
  for (CpuIsa isa : simd_isas())
    for (Codec codec : kCodecs) {
      EncodeOptions o;
      o.codec = codec;
      o.seed = ++seed;
      const Bytes input = as_bytes(tricky(n, seed), DType::kF32, 0);
      const Encoded chunk = encode_on(CpuIsa::kScalar, input, 0, DType::kF32, n, nullptr, o, 0);
      ASSERT_TRUE(chunk.status.is_ok()) << chunk.status.to_string();
      std::vector<float> want(n);
      use(CpuIsa::kScalar);
      ASSERT_TRUE(decode(chunk.chunk, want.data(), DType::kF32, n).is_ok());
      const std::size_t padded = (n + 16 + 15) / 16 * 16;
      const AlignedBuffer buffer(padded * sizeof(float));
      float* got = buffer.floats();
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(got) % 64, 0u);
      std::fill(got, got + padded, -7.5f);
      use(isa);
      const std::string what = std::string(cpu_isa_name(isa)) + " " + std::string(codec_name(codec));
      ASSERT_TRUE(decode(chunk.chunk, got, DType::kF32, n).is_ok()) << what;
      EXPECT_TRUE(same_bytes(want.data(), got, n * sizeof(float)))
          << what << ": "
          << first_difference(reinterpret_cast<const std::uint8_t*>(want.data()),
                              reinterpret_cast<const std::uint8_t*>(got), n * sizeof(float), 4);
      for (std::size_t i = n; i < padded; ++i) ASSERT_EQ(got[i], -7.5f) << what << ": wrote past the end";
    }
}

}  // namespace
}  // namespace tern::kernels
