// The collective engine over the loopback transport: results, bit-identity across ranks, and the
// failure semantics (every rank errors, naming the culprit).
#include <gtest/gtest.h>

#include <cmath>

#include "collective_test_util.h"
#include "tern/transport/collective_reference.h"
#include "tern/kernels/float16.h"

namespace tern::collective {
namespace {

using kernels::Codec;
using kernels::DType;
using testing::run_group;

std::vector<float> rank_input(int rank, std::size_t n) {
  return kernels::testing::gaussian(n, 1000 + static_cast<std::uint64_t>(rank));
}

struct Case {
  int ranks;
  std::size_t count;
  Codec codec;
  DType dtype;
  ReduceOp op = ReduceOp::kSum;
};

// Runs one allreduce on every rank; returns each rank's result bytes.
std::vector<std::vector<std::uint8_t>> run_allreduce(const Case& c, const CommunicatorOptions& copt = {}) {
  std::vector<std::vector<std::uint8_t>> results(static_cast<std::size_t>(c.ranks));
  run_group(c.ranks, copt, [&](int rank, std::unique_ptr<Communicator>& comm) {
    auto data = kernels::testing::as_dtype(rank_input(rank, c.count), c.dtype);
    AllreduceOptions o;
    o.dtype = c.dtype;
    o.scatter_codec = o.gather_codec = c.codec;
    o.op = c.op;
    o.timeout = std::chrono::seconds(20);
    const Status s = comm->allreduce(data.data(), c.count, o);
    EXPECT_TRUE(s.is_ok()) << "rank " << rank << ": " << s.to_string();
    results[static_cast<std::size_t>(rank)] = std::move(data);
  });
  return results;
}

double widened(const std::vector<std::uint8_t>& bytes, DType dtype, std::size_t i) {
  float v;
  kernels::widen_to_f32(bytes.data() + i * kernels::dtype_size(dtype), dtype, 1, &v);
  return v;
}

TEST(Allreduce, BitIdenticalOnEveryRankAndEqualToTheReference) {
  for (int ranks : {1, 2, 3, 4, 8}) {
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1009}, std::size_t{65537}}) {
      for (Codec codec : kernels::testing::kAllCodecs) {
        for (DType dtype : kernels::testing::kAllDTypes) {
          if (ranks == 8 && count == 65537 && dtype != DType::kF32) continue;  // keep the sweep quick
          const auto results = run_allreduce({ranks, count, codec, dtype});
          std::vector<std::vector<std::uint8_t>> inputs;
          for (int r = 0; r < ranks; ++r) inputs.push_back(kernels::testing::as_dtype(rank_input(r, count), dtype));
          AllreduceOptions o;
          o.dtype = dtype;
          o.scatter_codec = o.gather_codec = codec;
          const auto expected = reference_allreduce(inputs, count, o, {}, 1);
          ASSERT_TRUE(expected.is_ok()) << expected.status().to_string();
          ASSERT_EQ(results[0], *expected) << ranks << " ranks, " << count << " " << kernels::dtype_name(dtype) << " "
                                           << kernels::codec_name(codec) << ": differs from the reference";
          for (int r = 1; r < ranks; ++r)
            ASSERT_EQ(results[0], results[static_cast<std::size_t>(r)])
                << ranks << " ranks, " << count << " " << kernels::dtype_name(dtype) << " "
                << kernels::codec_name(codec) << ": rank " << r << " differs from rank 0";
        }
      }
    }
  }
}

TEST(Allreduce, Fp32CodecGivesTheExactSumInRankOrder) {
  const int ranks = 5;
  const std::size_t count = 100003;
  const auto results = run_allreduce({ranks, count, Codec::kFp32, DType::kF32});
  std::vector<std::vector<float>> inputs;
  for (int r = 0; r < ranks; ++r) inputs.push_back(rank_input(r, count));
  // Shard owner j starts from its own value and adds the others in rank order (docs/collective.md).
  const std::size_t shard = (count + ranks - 1) / ranks;
  const std::size_t shard_rounded = (shard + 127) / 128 * 128;
  for (std::size_t i = 0; i < count; ++i) {
    const int owner = static_cast<int>(i / shard_rounded);
    float acc = inputs[static_cast<std::size_t>(owner)][i];
    for (int p = 0; p < ranks; ++p)
      if (p != owner) acc += inputs[static_cast<std::size_t>(p)][i];
    float got;
    std::memcpy(&got, results[0].data() + 4 * i, 4);
    ASSERT_EQ(kernels::testing::bits_of(got), kernels::testing::bits_of(acc)) << "element " << i;
  }
}

TEST(Allreduce, CompressedSumsAreCloseToTheTrueSum) {
  // Relative L2 error of the allreduced sum against the exact sum, per codec, 4 ranks.
  // terngrad is unbiased but noisy: with normalized variance v = 1.26 per encode at B = 128
  // (docs/codecs.md), the 3 scattered contributions add 3v/4 ≈ 0.95 of |sum|², the re-encoded sum
  // (|acc|² ≈ 4 + 3.78 in units of |x|²) adds v·7.78/4 ≈ 2.45: expected sqrt(3.4) ≈ 1.84.
  // It is unbiased, so the summed error must be small against its own spread (|z| < 5).
  const int ranks = 4;
  const std::size_t count = 1 << 16;
  std::vector<double> exact(count, 0.0);
  for (int r = 0; r < ranks; ++r) {
    const auto x = rank_input(r, count);
    for (std::size_t i = 0; i < count; ++i) exact[i] += x[i];
  }
  const std::pair<Codec, double> bounds[] = {{Codec::kFp16, 1e-3}, {Codec::kBf16, 1e-2}, {Codec::kTernGrad, 2.0},
                                             {Codec::kTernaryEf, 0.8}, {Codec::kSignEf, 0.9}};
  for (auto [codec, bound] : bounds) {
    const auto results = run_allreduce({ranks, count, codec, DType::kF32});
    double err = 0, norm = 0, signed_err = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const double d = widened(results[0], DType::kF32, i) - exact[i];
      err += d * d;
      signed_err += d;
      norm += exact[i] * exact[i];
    }
    EXPECT_LT(std::sqrt(err / norm), bound) << kernels::codec_name(codec);
    if (codec == Codec::kTernGrad) {
      EXPECT_GT(std::sqrt(err / norm), 1.6) << "less noise than terngrad's variance predicts: is it still stochastic?";
      EXPECT_LT(std::fabs(signed_err) / std::sqrt(err), 5.0) << "terngrad allreduce looks biased";
    }
  }
}

TEST(Allreduce, MeanDividesByTheGroupSize) {
  const auto sum = run_allreduce({4, 4096, Codec::kFp32, DType::kF32, ReduceOp::kSum});
  const auto mean = run_allreduce({4, 4096, Codec::kFp32, DType::kF32, ReduceOp::kMean});
  for (std::size_t i = 0; i < 4096; ++i) ASSERT_EQ(widened(mean[0], DType::kF32, i), widened(sum[0], DType::kF32, i) * 0.25);
}

TEST(Allreduce, PipelineChunkingDoesNotChangeTheResult) {
  CommunicatorOptions small;
  small.pipeline_chunk_elements = 256;
  small.pipeline_window = 2;
  const auto a = run_allreduce({3, 50000, Codec::kTernGrad, DType::kF32});
  const auto b = run_allreduce({3, 50000, Codec::kTernGrad, DType::kF32}, small);
  // Chunks start at block boundaries and rounding is keyed by the global element index, so the
  // pipeline granularity is invisible in the result.
  EXPECT_EQ(a[0], b[0]);
}

TEST(Allreduce, ErrorFeedbackResidualsPersistPerTensorKey) {
  // Sending the same gradient repeatedly through sign-ef: the running average of the results
  // approaches the exact sum because the residuals carry what each step could not send.
  const int ranks = 3;
  const std::size_t count = 4096;
  std::vector<double> exact(count, 0.0);
  for (int r = 0; r < ranks; ++r) {
    const auto x = rank_input(r, count);
    for (std::size_t i = 0; i < count; ++i) exact[i] += x[i];
  }
  std::vector<double> average(count, 0.0);
  const int steps = 60;
  run_group(ranks, {}, [&](int rank, std::unique_ptr<Communicator>& comm) {
    AllreduceOptions o;
    o.scatter_codec = o.gather_codec = Codec::kSignEf;
    o.tensor_key = 7;
    for (int t = 0; t < steps; ++t) {
      auto x = rank_input(rank, count);
      ASSERT_TRUE(comm->allreduce(x.data(), count, o).is_ok());
      if (rank == 0)
        for (std::size_t i = 0; i < count; ++i) average[i] += x[i] / steps;
    }
  });
  double err = 0, one_shot_err = 0;
  const auto one_shot = run_allreduce({ranks, count, Codec::kSignEf, DType::kF32});
  for (std::size_t i = 0; i < count; ++i) {
    err += (average[i] - exact[i]) * (average[i] - exact[i]);
    one_shot_err += (widened(one_shot[0], DType::kF32, i) - exact[i]) * (widened(one_shot[0], DType::kF32, i) - exact[i]);
  }
  EXPECT_LT(err, one_shot_err / 10) << "time-averaged error should shrink far below one step's";
}

TEST(AllreduceFailures, MismatchedCountFailsEveryRankAndNamesTheValues) {
  std::vector<Status> statuses(3);
  run_group(3, {}, [&](int rank, std::unique_ptr<Communicator>& comm) {
    const std::size_t count = rank == 2 ? 1001 : 1000;
    auto x = rank_input(rank, count);
    AllreduceOptions o;
    o.timeout = std::chrono::seconds(10);
    statuses[static_cast<std::size_t>(rank)] = comm->allreduce(x.data(), count, o);
    // The group is broken now: the next call fails at once.
    const Status again = comm->allreduce(x.data(), count, o);
    EXPECT_FALSE(again.is_ok());
    EXPECT_NE(again.message().find("broken"), std::string::npos) << again.message();
  });
  for (int r = 0; r < 3; ++r) {
    const Status& s = statuses[static_cast<std::size_t>(r)];
    ASSERT_FALSE(s.is_ok()) << "rank " << r;
    EXPECT_NE(s.message().find("1000"), std::string::npos) << "rank " << r << ": " << s.message();
    EXPECT_NE(s.message().find("1001"), std::string::npos) << "rank " << r << ": " << s.message();
  }
}

TEST(AllreduceFailures, NonFiniteInputOnOneRankFailsEveryRank) {
  std::vector<Status> statuses(4);
  run_group(4, {}, [&](int rank, std::unique_ptr<Communicator>& comm) {
    auto x = rank_input(rank, 5000);
    if (rank == 1) x[4321] = std::nanf("");
    AllreduceOptions o;
    o.timeout = std::chrono::seconds(10);
    statuses[static_cast<std::size_t>(rank)] = comm->allreduce(x.data(), x.size(), o);
  });
  for (int r = 0; r < 4; ++r) {
    const Status& s = statuses[static_cast<std::size_t>(r)];
    ASSERT_FALSE(s.is_ok()) << "rank " << r;
    EXPECT_NE(s.message().find("non-finite"), std::string::npos) << "rank " << r << ": " << s.message();
  }
}

TEST(AllreduceFailures, ASilentRankTimesOutOnEveryOtherRankNamingIt) {
  std::vector<Status> statuses(3);
  run_group(3, {}, [&](int rank, std::unique_ptr<Communicator>& comm) {
    if (rank == 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(800));  // alive but silent
      return;
    }
    auto x = rank_input(rank, 1000);
    AllreduceOptions o;
    o.timeout = std::chrono::milliseconds(300);
    const auto t0 = std::chrono::steady_clock::now();
    statuses[static_cast<std::size_t>(rank)] = comm->allreduce(x.data(), x.size(), o);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  });
  for (int r = 0; r < 2; ++r) {
    const Status& s = statuses[static_cast<std::size_t>(r)];
    ASSERT_FALSE(s.is_ok());
    // The first rank to time out tells the other; either way rank 2 is named.
    EXPECT_NE(s.message().find("rank 2"), std::string::npos) << "rank " << r << ": " << s.message();
  }
}

TEST(AllreduceFailures, ADeadRankFailsTheOthersWithItsName) {
  std::vector<Status> statuses(4);
  run_group(4, {}, [&](int rank, std::unique_ptr<Communicator>& comm) {
    if (rank == 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      comm.reset();  // the rank goes away: its transport closes
      return;
    }
    auto x = rank_input(rank, 200000);
    AllreduceOptions o;
    o.timeout = std::chrono::seconds(10);
    statuses[static_cast<std::size_t>(rank)] = comm->allreduce(x.data(), x.size(), o);
  });
  for (int r = 0; r < 3; ++r) {
    const Status& s = statuses[static_cast<std::size_t>(r)];
    ASSERT_FALSE(s.is_ok()) << "rank " << r;
    EXPECT_NE(s.message().find("rank 3"), std::string::npos) << "rank " << r << ": " << s.message();
  }
}

TEST(AllreduceFailures, NotifiedPeerFailureAbortsPromptly) {
  std::vector<Status> statuses(2);
  run_group(3, {}, [&](int rank, std::unique_ptr<Communicator>& comm) {
    if (rank == 2) return;  // never participates
    auto x = rank_input(rank, 1000);
    AllreduceOptions o;
    o.timeout = std::chrono::seconds(20);
    std::thread monitor;
    if (rank == 0)
      monitor = std::thread([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        comm->notify_peer_failure(2, Status(StatusCode::kPeerFailure, "rank 2 (host x) missed its heartbeats"));
      });
    const auto t0 = std::chrono::steady_clock::now();
    statuses[static_cast<std::size_t>(rank)] = comm->allreduce(x.data(), x.size(), o);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    if (monitor.joinable()) monitor.join();
  });
  for (const Status& s : statuses) {
    ASSERT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("heartbeats"), std::string::npos) << s.message();
  }
}

TEST(AllreduceFailures, ATensorKeyMustKeepItsCount) {
  std::vector<Status> statuses(2);
  run_group(2, {}, [&](int rank, std::unique_ptr<Communicator>& comm) {
    AllreduceOptions o;
    o.scatter_codec = o.gather_codec = Codec::kTernaryEf;
    o.tensor_key = 3;
    auto x = rank_input(rank, 512);
    const Status first = comm->allreduce(x.data(), 512, o);
    ASSERT_TRUE(first.is_ok()) << first.to_string();
    statuses[static_cast<std::size_t>(rank)] = comm->allreduce(x.data(), 256, o);
  });
  for (const Status& s : statuses) {
    ASSERT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("tensor key 3"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace tern::collective
