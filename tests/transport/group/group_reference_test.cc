// Groups of 1..8 forked processes over UCX (TCP on loopback) run a sweep of allreduces (sizes 0,
// 1 and primes; every codec and dtype) and a 256 MiB one. Every rank reports a hash of its result
// bytes for each operation; the parent recomputes every result with reference_allreduce() from
// the same inputs and seeds and requires every rank's bytes to equal it.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/codec_test_util.h"
#include "tern/transport/collective_reference.h"
#include "tern/transport/group.h"
#include "transport/group/group_test_util.h"

namespace tern::transport {
namespace {

using collective::AllreduceOptions;
using collective::ReduceOp;
using kernels::Codec;
using kernels::DType;

constexpr std::uint64_t kSeed = 0x7e57'5eedull;

std::uint64_t fnv1a(const std::uint8_t* data, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

struct PlannedOp {
  std::size_t count;
  AllreduceOptions options;
};

// Rank r's input of operation `op` (numbered from 1, as the communicator numbers them).
std::vector<std::uint8_t> input_of(int rank, std::uint64_t op, const PlannedOp& p) {
  if (p.count > (std::size_t{1} << 24)) {  // large: a cheap pattern instead of mt19937 gaussians
    std::vector<float> v(p.count);
    for (std::size_t i = 0; i < p.count; ++i) {
      v[i] = static_cast<float>(static_cast<int>((i * 2654435761u + static_cast<std::size_t>(rank) * 97) % 2001) - 1000) * 1e-3f;
    }
    return kernels::testing::as_dtype(v, p.options.dtype);
  }
  return kernels::testing::as_dtype(kernels::testing::gaussian(p.count, op * 131 + static_cast<std::uint64_t>(rank)),
                                    p.options.dtype);
}

GroupOptions group_options() {
  GroupOptions o;
  o.bootstrap.formation_timeout = std::chrono::seconds(60);
  o.bootstrap.heartbeat_timeout = std::chrono::seconds(10);  // 8 processes share 2 cores here
  o.ucx.config.push_back({"TLS", "tcp,self"});
  o.communicator.seed = kSeed;
  return o;
}

// Forks n ranks that run `plan` in order; returns each rank's output: one hash per line, or "err ...".
std::vector<std::string> run_plan(int n, const std::vector<PlannedOp>& plan) {
  auto id = UniqueId::generate("127.0.0.1", testing::free_loopback_port());
  EXPECT_TRUE(id.is_ok());
  std::vector<testing::Child> children;
  for (int r = 0; r < n; ++r) {
    children.push_back(testing::fork_child([&, r] {
      std::ostringstream out;
      auto group = Group::form(*id, r, n, group_options());
      if (!group.is_ok()) {
        out << "err " << group.status().to_string() << "\n";
        return out.str();
      }
      for (std::size_t k = 0; k < plan.size(); ++k) {
        std::vector<std::uint8_t> x = input_of(r, k + 1, plan[k]);
        const Status s = (*group)->communicator().allreduce(x.data(), plan[k].count, plan[k].options);
        if (!s.is_ok()) {
          out << "err op " << k + 1 << ": " << s.to_string() << "\n";
          break;
        }
        out << fnv1a(x.data(), x.size()) << "\n";
      }
      return out.str();
    }));
    EXPECT_GE(children.back().pid, 0);
  }
  std::vector<std::string> outputs;
  for (const auto& child : children) {
    outputs.push_back(testing::read_all(child.out));
    close(child.out);
    int status = 0;
    waitpid(child.pid, &status, 0);
  }
  return outputs;
}

std::vector<std::string> expected_hashes(int n, const std::vector<PlannedOp>& plan) {
  std::vector<std::string> lines;
  collective::CommunicatorOptions copt;
  copt.seed = kSeed;
  for (std::size_t k = 0; k < plan.size(); ++k) {
    std::vector<std::vector<std::uint8_t>> inputs;
    for (int r = 0; r < n; ++r) inputs.push_back(input_of(r, k + 1, plan[k]));
    auto ref = collective::reference_allreduce(inputs, plan[k].count, plan[k].options, copt, k + 1);
    EXPECT_TRUE(ref.is_ok()) << ref.status().to_string();
    lines.push_back(ref.is_ok() ? std::to_string(fnv1a(ref->data(), ref->size())) : "reference failed");
  }
  return lines;
}

void expect_every_rank_matches(int n, const std::vector<PlannedOp>& plan) {
  const auto outputs = run_plan(n, plan);
  const auto expected = expected_hashes(n, plan);
  for (int r = 0; r < n; ++r) {
    std::istringstream in(outputs[static_cast<std::size_t>(r)]);
    std::string line;
    for (std::size_t k = 0; k < plan.size(); ++k) {
      ASSERT_TRUE(std::getline(in, line)) << n << " ranks: rank " << r << " reported only " << k << " of "
                                          << plan.size() << " operations";
      ASSERT_EQ(line, expected[k]) << n << " ranks: rank " << r << ", op " << k + 1 << " ("
                                   << kernels::codec_name(plan[k].options.scatter_codec) << ", "
                                   << kernels::dtype_name(plan[k].options.dtype) << ", " << plan[k].count
                                   << " elements)";
    }
  }
}

// Sizes 0, 1 and primes (odd against blocks, shards and pipeline chunks); every codec and dtype;
// sum and mean alternate; error-feedback codecs get a fresh tensor key per op (fresh residuals).
std::vector<PlannedOp> sweep() {
  std::vector<PlannedOp> plan;
  std::uint64_t key = 1;
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4099}, std::size_t{262147}}) {
    for (Codec codec : kernels::testing::kAllCodecs) {
      for (DType dtype : kernels::testing::kAllDTypes) {
        PlannedOp p{count, {}};
        p.options.dtype = dtype;
        p.options.scatter_codec = p.options.gather_codec = codec;
        p.options.op = plan.size() % 2 ? ReduceOp::kMean : ReduceOp::kSum;
        p.options.tensor_key = key++;
        p.options.timeout = std::chrono::seconds(60);
        plan.push_back(p);
      }
    }
  }
  return plan;
}

class GroupReference : public ::testing::TestWithParam<int> {};

TEST_P(GroupReference, EveryRankHoldsTheReferenceBytesForEveryCodecDtypeAndSize) {
  expect_every_rank_matches(GetParam(), sweep());
}

INSTANTIATE_TEST_SUITE_P(Ranks, GroupReference, ::testing::Range(1, 9),
                         [](const ::testing::TestParamInfo<int>& p) { return std::to_string(p.param) + "ranks"; });

TEST(GroupReferenceLarge, A256MiBTernGradAllreduceMatchesTheReferenceOnEveryRank) {
  PlannedOp p{std::size_t{64} << 20, {}};  // 2^26 fp32 elements = 256 MiB per rank
  p.options.timeout = std::chrono::seconds(120);
  expect_every_rank_matches(3, {p});
}

TEST(GroupEagerLimit, CompressedChunksGoEagerlyFullPrecisionChunksByRendezvous) {
  collective::CommunicatorOptions o;  // 2^17-element chunks
  const std::size_t limit = eager_limit(o);
  const auto chunk = [&](Codec codec, std::uint32_t block) {
    return *kernels::encoded_size(codec, block, o.pipeline_chunk_elements);
  };
  for (Codec c : {Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf})
    for (std::uint32_t block : {kernels::kMinBlockSize, 128u, kernels::kMaxBlockSize})
      EXPECT_LE(chunk(c, block), limit) << kernels::codec_name(c) << " block " << block;
  EXPECT_EQ(limit, chunk(Codec::kTernGrad, kernels::kMinBlockSize) + 1);
  EXPECT_EQ(limit, 49'169u);  // docs/transport-ucx.md quotes it
  EXPECT_GT(chunk(Codec::kBf16, 128), limit);
  EXPECT_GT(chunk(Codec::kFp32, 128), limit);
  o.pipeline_chunk_elements = 1u << 30;  // a 2-bit chunk of 256 MiB would be buffered whole if unexpected
  EXPECT_EQ(eager_limit(o), kMaxEagerChunkBytes);
}

}  // namespace
}  // namespace tern::transport
