// Statistical tests of terngrad's stochastic rounding, with fixed seeds and stated bounds.
//
// Setup: one fixed Gaussian tensor g (n = 4096, blocks of 128) encoded K = 2000 times with
// different Philox streams. For each element the codec output t is s·Bernoulli(|g|/s)·sign(g), so
// E[t] = g and Var[t] = |g|(s − |g|) exactly (up to the 2^-23·s bias bound of the 24-bit uniform,
// which is 4 orders of magnitude below the resolution of these tests).
//
// Bounds (probabilities for a correct codec, normal approximation of the K-trial means):
//  - total bias z = Σ(mean_i − g_i) / sqrt(Σ Var_i / K): |z| < 5 (false alarm ~6e-7);
//  - magnitude bias z = Σ sign(g_i)(mean_i − g_i) / sqrt(Σ Var_i / K): |z| < 5 (detects a lost or
//    shrunk scale, or a wrong probability, that the plain sum can hide by symmetry);
//  - mean of z_i² over elements in [0.9, 1.1] (its sd here is ≈ 0.025: 4 sd);
//  - empirical variance summed over elements within 3% of Σ|g|(s − |g|) (sd ≈ 0.3%).
// A power check applies the same statistics to outputs shrunk by 2% and requires them to fail.
#include <gtest/gtest.h>

#include <cmath>

#include "codec_test_util.h"

namespace tern::kernels {
namespace {

constexpr std::size_t kN = 4096;
constexpr std::uint32_t kBlock = 128;
constexpr int kTrials = 2000;

struct Moments {
  std::vector<double> mean, var, expected_var;
};

Moments sample(const std::vector<float>& g, DType dtype, double shrink = 1.0) {
  const auto input = testing::as_dtype(g, dtype);
  std::vector<double> sum(kN), sumsq(kN);
  EncodeOptions o;
  o.block_size = kBlock;
  o.seed = 20171204;
  for (int t = 0; t < kTrials; ++t) {
    o.stream = static_cast<std::uint64_t>(t);
    const auto y = testing::decode_or_die(testing::encode_or_die(input.data(), dtype, kN, nullptr, o), kN);
    for (std::size_t i = 0; i < kN; ++i) {
      const double v = y[i] * shrink;
      sum[i] += v;
      sumsq[i] += v * v;
    }
  }
  Moments m;
  m.mean.resize(kN);
  m.var.resize(kN);
  m.expected_var.resize(kN);
  for (std::size_t b = 0; b < kN / kBlock; ++b) {
    double s = 0;
    for (std::size_t i = b * kBlock; i < (b + 1) * kBlock; ++i) s = std::max(s, std::fabs(double(g[i])));
    for (std::size_t i = b * kBlock; i < (b + 1) * kBlock; ++i) {
      m.mean[i] = sum[i] / kTrials;
      m.var[i] = sumsq[i] / kTrials - m.mean[i] * m.mean[i];
      m.expected_var[i] = std::fabs(double(g[i])) * (s - std::fabs(double(g[i])));
    }
  }
  return m;
}

struct Verdict {
  double total_z, magnitude_z, mean_z2, var_ratio;
  bool unbiased() const { return std::fabs(total_z) < 5 && std::fabs(magnitude_z) < 5 && mean_z2 > 0.9 && mean_z2 < 1.1; }
  bool variance_ok() const { return var_ratio > 0.97 && var_ratio < 1.03; }
};

Verdict judge(const std::vector<float>& g, const Moments& m) {
  double bias = 0, mag_bias = 0, var_sum = 0, z2 = 0, emp_var = 0;
  std::size_t random_elements = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    const double d = m.mean[i] - g[i];
    bias += d;
    mag_bias += (g[i] < 0 ? -d : d);
    var_sum += m.expected_var[i];
    emp_var += m.var[i];
    if (m.expected_var[i] > 0) {
      z2 += d * d / (m.expected_var[i] / kTrials);
      ++random_elements;
    }
  }
  const double se = std::sqrt(var_sum / kTrials);
  return {bias / se, mag_bias / se, z2 / double(random_elements), emp_var / var_sum};
}

TEST(TernGradStatistics, UnbiasedWithVarianceAbsGTimesSMinusAbsG) {
  const auto g = testing::gaussian(kN, 7);
  for (DType dtype : testing::kAllDTypes) {
    // The codec sees g rounded to the dtype: judge against that.
    std::vector<float> seen(g);
    if (dtype != DType::kF32)
      for (auto& v : seen) v = dtype == DType::kF16 ? fp16_to_float(float_to_fp16(v)) : bf16_to_float(float_to_bf16(v));
    const Verdict v = judge(seen, sample(g, dtype));
    EXPECT_TRUE(v.unbiased()) << dtype_name(dtype) << ": total z " << v.total_z << ", magnitude z "
                              << v.magnitude_z << ", mean z^2 " << v.mean_z2;
    EXPECT_TRUE(v.variance_ok()) << dtype_name(dtype) << ": empirical/expected variance " << v.var_ratio;
  }
}

TEST(TernGradStatistics, TheTestDetectsAShrunkScale) {
  const auto g = testing::gaussian(kN, 7);
  const Verdict v = judge(g, sample(g, DType::kF32, 0.98));
  EXPECT_FALSE(v.unbiased()) << "a 2% shrink went unnoticed: magnitude z " << v.magnitude_z;
}

TEST(TernGradStatistics, ClippingLowersVarianceOnHeavyTails) {
  std::mt19937_64 rng(3);
  std::student_t_distribution<float> dist(3.0f);
  std::vector<float> g(kN);
  for (auto& v : g) v = dist(rng);
  auto error = [&](bool clip) {
    EncodeOptions o;
    o.block_size = kBlock;
    o.clip = clip;
    double err = 0, norm = 0;
    for (int t = 0; t < 200; ++t) {
      o.stream = static_cast<std::uint64_t>(t);
      const auto y = testing::decode_or_die(testing::encode_or_die(g.data(), DType::kF32, kN, nullptr, o), kN);
      for (std::size_t i = 0; i < kN; ++i) {
        err += (double(y[i]) - g[i]) * (double(y[i]) - g[i]);
        norm += double(g[i]) * g[i];
      }
    }
    return err / norm;
  };
  const double plain = error(false), clipped = error(true);
  EXPECT_LT(clipped, 0.75 * plain) << "normalized error: plain " << plain << ", clipped " << clipped;
}

}  // namespace
}  // namespace tern::kernels
