// Communicator::allreduce_overlapped(): the same bits as one operation at a time, whichever ranks
// overlap; same-key operations wait (error feedback stays in order); failures reach every
// operation and every rank.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "collective_test_util.h"

namespace tern::collective {
namespace {

using kernels::Codec;
using testing::run_group;

struct Planned {
  std::size_t count;
  Codec codec;
  std::uint64_t key;
};

// Sizes from empty to several pipeline chunks (the group uses 4096-element chunks); two
// ternary-ef operations share key 1, so the second must wait for the first.
const std::vector<Planned> kPlan = {
    {100003, Codec::kTernGrad, 10}, {1000, Codec::kTernaryEf, 1},  {65537, Codec::kFp32, 11},
    {7, Codec::kSignEf, 2},         {0, Codec::kBf16, 12},         {1000, Codec::kTernaryEf, 1},
    {30011, Codec::kTernGrad, 13},
};

CommunicatorOptions small_chunks() {
  CommunicatorOptions o;
  o.pipeline_chunk_elements = 4096;
  return o;
}

AllreduceOptions options_for(const Planned& p) {
  AllreduceOptions o;
  o.scatter_codec = o.gather_codec = p.codec;
  o.tensor_key = p.key;
  o.timeout = std::chrono::seconds(20);
  return o;
}

std::vector<std::vector<float>> inputs_of(int rank) {
  std::vector<std::vector<float>> in;
  for (std::size_t i = 0; i < kPlan.size(); ++i)
    in.push_back(kernels::testing::gaussian(kPlan[i].count, 7000 + 100 * static_cast<std::uint64_t>(rank) + i));
  return in;
}

using Results = std::vector<std::vector<std::vector<float>>>;  // [rank][operation]

Results one_at_a_time(int ranks) {
  Results out(static_cast<std::size_t>(ranks));
  run_group(ranks, small_chunks(), [&](int rank, std::unique_ptr<Communicator>& comm) {
    auto data = inputs_of(rank);
    for (std::size_t i = 0; i < kPlan.size(); ++i) {
      const Status s = comm->allreduce(data[i].data(), kPlan[i].count, options_for(kPlan[i]));
      EXPECT_TRUE(s.is_ok()) << "rank " << rank << " op " << i << ": " << s.to_string();
    }
    out[static_cast<std::size_t>(rank)] = std::move(data);
  });
  return out;
}

struct OverlapLog {
  std::vector<Status> outcomes;
  std::vector<int> done_calls;
  bool second_handed_out_before_first_done = false;
  int started_overlapped = 0;
};

// Ranks with overlap[rank] use allreduce_overlapped(), handing out one operation per next() call;
// the others call allreduce() for each.
Results run_mixed(int ranks, const std::vector<bool>& overlap, std::vector<OverlapLog>* logs,
                  const std::function<void(int, std::vector<std::vector<float>>&)>& tamper = {}) {
  Results out(static_cast<std::size_t>(ranks));
  logs->assign(static_cast<std::size_t>(ranks), {});
  run_group(ranks, small_chunks(), [&](int rank, std::unique_ptr<Communicator>& comm) {
    auto data = inputs_of(rank);
    if (tamper) tamper(rank, data);
    OverlapLog& log = (*logs)[static_cast<std::size_t>(rank)];
    log.outcomes.assign(kPlan.size(), Status(StatusCode::kInternal, "never completed"));
    log.done_calls.assign(kPlan.size(), 0);
    const auto make = [&](std::size_t i) {
      OverlappedAllreduce o;
      o.buffer = data[i].data();
      o.count = kPlan[i].count;
      o.options = options_for(kPlan[i]);
      o.done = [&log, i](const Status& s, const AllreduceStats& stats) {
        log.outcomes[i] = s;
        if (stats.started_overlapped) ++log.started_overlapped;
        ++log.done_calls[i];
      };
      return o;
    };
    if (overlap[static_cast<std::size_t>(rank)]) {
      std::size_t handed = 1;
      comm->allreduce_overlapped(make(0), [&]() -> std::optional<OverlappedAllreduce> {
        if (handed == kPlan.size()) return std::nullopt;
        if (handed == 1 && log.done_calls[0] == 0) log.second_handed_out_before_first_done = true;
        return make(handed++);
      });
    } else {
      for (std::size_t i = 0; i < kPlan.size(); ++i) {
        log.outcomes[i] = comm->allreduce(data[i].data(), kPlan[i].count, options_for(kPlan[i]));
        ++log.done_calls[i];
      }
    }
    out[static_cast<std::size_t>(rank)] = std::move(data);
  });
  return out;
}

void expect_same_bits(const Results& expected, const Results& got, const std::string& what) {
  for (std::size_t r = 0; r < expected.size(); ++r)
    for (std::size_t i = 0; i < kPlan.size(); ++i)
      ASSERT_TRUE(expected[r][i] == got[r][i]) << what << ": rank " << r << ", operation " << i << " ("
                                               << kernels::codec_name(kPlan[i].codec) << ") differs";
}

TEST(AllreduceOverlapped, SameBitsAsOneAtATimeWhicheverRanksOverlap) {
  const int ranks = 4;
  const Results expected = one_at_a_time(ranks);
  for (int r = 1; r < ranks; ++r) ASSERT_TRUE(expected[0] == expected[static_cast<std::size_t>(r)]);
  for (const auto& overlap : {std::vector<bool>{true, true, true, true}, std::vector<bool>{true, false, true, false}}) {
    std::vector<OverlapLog> logs;
    const Results got = run_mixed(ranks, overlap, &logs);
    expect_same_bits(expected, got, overlap[1] ? "all ranks overlap" : "ranks 0 and 2 overlap");
    for (int r = 0; r < ranks; ++r) {
      const OverlapLog& log = logs[static_cast<std::size_t>(r)];
      for (std::size_t i = 0; i < kPlan.size(); ++i) {
        EXPECT_TRUE(log.outcomes[i].is_ok()) << "rank " << r << " op " << i << ": " << log.outcomes[i].to_string();
        EXPECT_EQ(log.done_calls[i], 1) << "rank " << r << " op " << i;
      }
      if (overlap[static_cast<std::size_t>(r)]) {
        EXPECT_TRUE(log.second_handed_out_before_first_done) << "rank " << r << " never overlapped";
        EXPECT_GT(log.started_overlapped, 0) << "rank " << r;
      }
    }
  }
}

TEST(AllreduceOverlapped, AFailedOperationFailsItOnEveryRankAndEveryLaterOne) {
  const int ranks = 3;
  std::vector<OverlapLog> logs;
  const auto start = std::chrono::steady_clock::now();
  (void)run_mixed(ranks, {true, true, false}, &logs, [](int rank, std::vector<std::vector<float>>& data) {
    if (rank == 1) data[2][777] = std::nanf("");  // operation 2 (fp32) carries a NaN on rank 1
  });
  // Every rank hears of it through the aborts, not at the operations' 20 s deadline.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  for (int r = 0; r < ranks; ++r) {
    const OverlapLog& log = logs[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < kPlan.size(); ++i) EXPECT_EQ(log.done_calls[i], 1) << "rank " << r << " op " << i;
    EXPECT_FALSE(log.outcomes[2].is_ok()) << "rank " << r;
    EXPECT_NE(log.outcomes[2].message().find("non-finite"), std::string::npos)
        << "rank " << r << ": " << log.outcomes[2].message();
    for (std::size_t i = 3; i < kPlan.size(); ++i)
      EXPECT_FALSE(log.outcomes[i].is_ok()) << "rank " << r << " op " << i << " ran on a broken group";
  }
}

}  // namespace
}  // namespace tern::collective
