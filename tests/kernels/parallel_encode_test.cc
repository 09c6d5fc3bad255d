// "Identical for any thread count": threads encoding block-aligned pieces of one tensor, each with
// its element offset, produce exactly the codes and scales of a single-threaded encode. Also runs
// under ThreadSanitizer (the tsan preset) to show the codecs share no mutable state.
#include <gtest/gtest.h>

#include <thread>

#include "codec_test_util.h"
#include "tern/kernels/wire_format.h"

namespace tern::kernels {
namespace {

TEST(ParallelEncode, AnyThreadCountGivesTheSameCodes) {
  const std::size_t n = 100 * 128 + 5;
  const auto g = testing::gaussian(n, 21);
  EncodeOptions o;
  o.seed = 77;
  o.stream = 5;
  const auto whole = *parse_chunk(testing::encode_or_die(g.data(), DType::kF32, n, nullptr, o));
  const auto whole_bytes = testing::encode_or_die(g.data(), DType::kF32, n, nullptr, o);
  const auto whole_view = *parse_chunk(whole_bytes);
  for (unsigned threads : {1u, 2u, 3u, 7u}) {
    const std::size_t blocks = (n + 127) / 128;
    std::vector<std::vector<std::uint8_t>> pieces(threads);
    std::vector<std::size_t> begins(threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      const std::size_t b0 = blocks * t / threads, b1 = blocks * (t + 1) / threads;
      begins[t] = b0 * 128;
      const std::size_t m = std::min(n, b1 * 128) - begins[t];
      pool.emplace_back([&, t, m] {
        EncodeOptions piece = o;
        piece.element_offset = begins[t];
        pieces[t].resize(*encoded_size(piece.codec, piece.block_size, m));
        ASSERT_TRUE(encode(g.data() + begins[t], DType::kF32, m, nullptr, piece, pieces[t]).is_ok());
      });
    }
    for (auto& th : pool) th.join();
    for (unsigned t = 0; t < threads; ++t) {
      const auto view = *parse_chunk(pieces[t]);
      EXPECT_EQ(0, std::memcmp(view.codes, whole_view.codes + begins[t] / 4, view.layout.code_bytes))
          << threads << " threads, piece " << t;
      EXPECT_EQ(0, std::memcmp(view.scales, whole_view.scales + 4 * (begins[t] / 128), 4 * view.layout.scale_count));
    }
  }
  (void)whole;
}

}  // namespace
}  // namespace tern::kernels
