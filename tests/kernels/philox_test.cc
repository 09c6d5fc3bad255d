#include "tern/kernels/philox.h"

#include <gtest/gtest.h>

namespace tern::kernels {
namespace {

// Known-answer vectors from Random123's tests/kat_vectors ("philox4x32 7" and "philox4x32 10" lines).
struct Kat {
  PhiloxBlock ctr;
  std::uint32_t k0, k1;
  PhiloxBlock expected;
};

template <int Rounds>
void expect_known_answers(const Kat (&kats)[3]) {
  for (const Kat& kat : kats) {
    const PhiloxBlock out = philox4x32<Rounds>(kat.ctr, kat.k0, kat.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], kat.expected.v[i]) << Rounds << " rounds, word " << i;
  }
}

TEST(Philox, SevenRoundsMatchRandom123KnownAnswers) {
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}}},
  };
  expect_known_answers<7>(kats);
}

// The same round function with Random123's default round count: a check on the rounds themselves.
TEST(Philox, TenRoundsMatchRandom123KnownAnswers) {
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  expect_known_answers<10>(kats);
}

TEST(Philox, TernGradDrawsFromSevenRounds) {
  static_assert(kTernGradPhiloxRounds == 7);
  const std::uint64_t seed = 0x0123456789abcdefULL, stream = 0xfedcba9876543210ULL, quad = 0x1'0000'0005ULL;
  const PhiloxBlock want = philox4x32<7>(
      PhiloxBlock{{static_cast<std::uint32_t>(quad), static_cast<std::uint32_t>(quad >> 32),
                   static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  const PhiloxBlock got = philox_quad(seed, stream, quad);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], want.v[i]) << "word " << i;
}

TEST(Philox, ElementWordsComeFromTheirQuad) {
  const std::uint64_t seed = 0x0123456789abcdefULL, stream = 0xfedcba9876543210ULL;
  for (std::uint64_t quad : {0ULL, 1ULL, 0x1'0000'0000ULL, 0xffff'ffff'ffffULL}) {
    const PhiloxBlock block = philox_quad(seed, stream, quad);
    for (unsigned j = 0; j < 4; ++j) EXPECT_EQ(philox_word(seed, stream, 4 * quad + j), block.v[j]);
  }
  EXPECT_NE(philox_word(seed, stream, 5), philox_word(seed, stream + 1, 5));
  EXPECT_NE(philox_word(seed, stream, 5), philox_word(seed + 1, stream, 5));
}

TEST(Philox, Uniform24IsOnTheGridAndBelowOne) {
  EXPECT_EQ(uniform24(0), 0.0f);
  EXPECT_EQ(uniform24(0xffffffffu), 1.0f - 0x1p-24f);
  EXPECT_EQ(uniform24(0x100u), 0x1p-24f);
  EXPECT_EQ(uniform24(0xffu), 0.0f);  // low 8 bits are dropped
}

}  // namespace
}  // namespace tern::kernels
