// Communicator::allreduce(Tensor&): the engine reaches a tensor only through the Tensor interface,
// so a tensor whose memory it cannot see (here a test double standing in for GPU memory) ends with
// the same bits as a host buffer, ranks may mix kinds of memory, and the interface's errors fail
// the operation on every rank. cuda_tensor.h's own checks need a GPU (tests/.../cuda_tensor_gpu_check.cc).
#include <gtest/gtest.h>

#include <cstring>

#include "collective_test_util.h"
#include "tern/transport/cuda_tensor.h"

namespace tern::collective {
namespace {

using kernels::Codec;
using kernels::DType;
using testing::run_group;

// Holds its elements where the engine cannot reach them (a private copy: no address the engine
// could write through is ever handed out) and counts what the engine asks of it.
class PrivateTensor final : public Tensor {
 public:
  PrivateTensor(std::vector<std::uint8_t> bytes, DType dtype)
      : bytes_(std::move(bytes)), dtype_(dtype), count_(bytes_.size() / kernels::dtype_size(dtype)) {}

  DType dtype() const noexcept override { return dtype_; }
  std::size_t count() const noexcept override { return count_; }
  const void* address() const noexcept override { return this; }  // distinct per tensor, never dereferenced

  Status encode(std::size_t begin, std::size_t n, float* residual, const kernels::EncodeOptions& options,
                std::span<std::uint8_t> out) override {
    ++encodes;
    elements_encoded += n;
    if (fail_encode) return corrupt_data("planted encode failure");
    TERN_CHECK(kernels::encode(at(begin), dtype_, n, residual, options, out));
    if (residual) TERN_CHECK(kernels::residual_update(out, at(begin), dtype_, n, residual));
    return Status::ok();
  }
  Status widen(std::size_t begin, std::size_t n, float* out) override {
    elements_widened += n;
    kernels::widen_to_f32(at(begin), dtype_, n, out);
    return Status::ok();
  }
  Status decode(std::span<const std::uint8_t> chunk, std::size_t begin, std::size_t n) override {
    elements_decoded += n;
    return kernels::decode(chunk, at(begin), dtype_, n);
  }

  const std::vector<std::uint8_t>& bytes() const { return bytes_; }

  int encodes = 0;
  std::size_t elements_encoded = 0, elements_widened = 0, elements_decoded = 0;
  bool fail_encode = false;

 private:
  std::uint8_t* at(std::size_t element) { return bytes_.data() + element * kernels::dtype_size(dtype_); }

  std::vector<std::uint8_t> bytes_;
  DType dtype_;
  std::size_t count_;
};

struct Planned {
  std::size_t count;
  DType dtype;
  Codec codec;
  std::uint64_t key;
};

// Several pipeline chunks per shard (4096-element chunks), every dtype, and error feedback on one
// key twice (its residuals live on the host and must carry over between the two operations).
const std::vector<Planned> kPlan = {
    {50021, DType::kF32, Codec::kTernGrad, 1}, {20011, DType::kBf16, Codec::kTernaryEf, 2},
    {7, DType::kF16, Codec::kFp32, 3},         {20011, DType::kBf16, Codec::kTernaryEf, 2},
    {0, DType::kF32, Codec::kSignEf, 4},       {30011, DType::kF16, Codec::kSignEf, 5},
};

CommunicatorOptions small_chunks() {
  CommunicatorOptions o;
  o.pipeline_chunk_elements = 4096;
  return o;
}

AllreduceOptions options_for(const Planned& p) {
  AllreduceOptions o;
  o.dtype = p.dtype;
  o.scatter_codec = o.gather_codec = p.codec;
  o.tensor_key = p.key;
  o.timeout = std::chrono::seconds(20);
  return o;
}

std::vector<std::uint8_t> input_of(int rank, std::size_t i) {
  return kernels::testing::as_dtype(kernels::testing::gaussian(kPlan[i].count, 500 + 10 * static_cast<std::uint64_t>(rank) + i), kPlan[i].dtype);
}

using Results = std::vector<std::vector<std::vector<std::uint8_t>>>;  // [rank][operation]

// Runs the plan; ranks with private[rank] hand the engine PrivateTensors, the others host buffers.
Results run_plan(int ranks, const std::vector<bool>& use_private) {
  Results out(static_cast<std::size_t>(ranks));
  run_group(ranks, small_chunks(), [&](int rank, std::unique_ptr<Communicator>& comm) {
    for (std::size_t i = 0; i < kPlan.size(); ++i) {
      auto data = input_of(rank, i);
      Status s;
      if (use_private[static_cast<std::size_t>(rank)]) {
        PrivateTensor tensor(std::move(data), kPlan[i].dtype);
        s = comm->allreduce(tensor, options_for(kPlan[i]));
        if (ranks > 1) {
          // (7 elements fit one block, so one rank owns all of them and the others encode.)
          if (kPlan[i].count > 10000) {
            EXPECT_GT(tensor.encodes, 0) << "rank " << rank << " op " << i;
          }
          // The engine encodes the other ranks' shards, widens its own and decodes everything.
          EXPECT_EQ(tensor.elements_decoded, kPlan[i].count) << "rank " << rank << " op " << i;
          EXPECT_EQ(tensor.elements_encoded + tensor.elements_widened, kPlan[i].count) << "rank " << rank;
        }
        data = tensor.bytes();
      } else {
        s = comm->allreduce(data.data(), kPlan[i].count, options_for(kPlan[i]));
      }
      EXPECT_TRUE(s.is_ok()) << "rank " << rank << " op " << i << ": " << s.to_string();
      out[static_cast<std::size_t>(rank)].push_back(std::move(data));
    }
  });
  return out;
}

TEST(TensorInterface, AnOpaqueTensorGivesTheBitsOfAHostBufferAndRanksMayMixThem) {
  for (int ranks : {1, 3}) {
    const Results host = run_plan(ranks, std::vector<bool>(static_cast<std::size_t>(ranks), false));
    const Results opaque = run_plan(ranks, std::vector<bool>(static_cast<std::size_t>(ranks), true));
    std::vector<bool> mixed(static_cast<std::size_t>(ranks), true);
    mixed[0] = false;
    const Results mix = run_plan(ranks, mixed);
    for (int r = 0; r < ranks; ++r)
      for (std::size_t i = 0; i < kPlan.size(); ++i) {
        const auto& want = host[0][i];  // rank 0's host result: every rank must hold it
        EXPECT_EQ(host[static_cast<std::size_t>(r)][i], want) << "host, rank " << r << " op " << i;
        EXPECT_EQ(opaque[static_cast<std::size_t>(r)][i], want) << "opaque, " << ranks << " ranks, rank " << r
                                                                 << " op " << i;
        EXPECT_EQ(mix[static_cast<std::size_t>(r)][i], want) << "mixed, rank " << r << " op " << i;
      }
    // Not vacuous: the operations changed the data (every input differs from the result).
    EXPECT_NE(host[0][0], input_of(0, 0));
  }
}

TEST(TensorInterface, ATensorWhoseDtypeDiffersFromTheOptionsFailsEveryRank) {
  std::vector<Status> outcome(3);
  run_group(3, small_chunks(), [&](int rank, std::unique_ptr<Communicator>& comm) {
    PrivateTensor tensor(input_of(rank, 0), DType::kF32);
    AllreduceOptions o = options_for(kPlan[0]);
    if (rank == 1) o.dtype = DType::kBf16;
    outcome[static_cast<std::size_t>(rank)] = comm->allreduce(tensor, o);
  });
  EXPECT_EQ(outcome[1].code(), StatusCode::kInvalidArgument) << outcome[1].to_string();
  EXPECT_NE(outcome[1].message().find("the tensor holds fp32 elements, the options say bf16"), std::string::npos)
      << outcome[1].to_string();
  for (int r : {0, 2}) EXPECT_FALSE(outcome[static_cast<std::size_t>(r)].is_ok()) << "rank " << r;
}

TEST(TensorInterface, AnEncodeFailureOfOneRanksTensorFailsEveryRankNamingIt) {
  std::vector<Status> outcome(3);
  run_group(3, small_chunks(), [&](int rank, std::unique_ptr<Communicator>& comm) {
    PrivateTensor tensor(input_of(rank, 0), kPlan[0].dtype);
    tensor.fail_encode = rank == 2;
    outcome[static_cast<std::size_t>(rank)] = comm->allreduce(tensor, options_for(kPlan[0]));
  });
  for (int r = 0; r < 3; ++r) {
    const Status& s = outcome[static_cast<std::size_t>(r)];
    EXPECT_FALSE(s.is_ok()) << "rank " << r;
    EXPECT_NE(s.message().find("planted encode failure"), std::string::npos) << "rank " << r << ": " << s.to_string();
    EXPECT_NE(s.message().find("rank 2"), std::string::npos) << "rank " << r << ": " << s.to_string();
  }
}

TEST(TensorInterface, AFailingTensorFailsTheOperationOnEveryRankWithItsReason) {
  // 7 elements: rank 0 owns them all, so it only widens and the others only encode; 50021: both.
  for (std::size_t count : {std::size_t{7}, std::size_t{50021}}) {
    for (int failing : {0, 1}) {
      std::vector<Status> outcome(3);
      run_group(3, small_chunks(), [&](int rank, std::unique_ptr<Communicator>& comm) {
        AllreduceOptions o = options_for(kPlan[0]);
        auto data = kernels::testing::as_dtype(kernels::testing::gaussian(count, 9 + rank), DType::kF32);
        if (rank == failing) {
          auto tensor = failing_tensor(DType::kF32, count, non_finite("local step: NaN in a trainer's buffer"));
          outcome[static_cast<std::size_t>(rank)] = comm->allreduce(*tensor, o);
        } else {
          outcome[static_cast<std::size_t>(rank)] = comm->allreduce(data.data(), count, o);
        }
      });
      for (int r = 0; r < 3; ++r) {
        const Status& s = outcome[static_cast<std::size_t>(r)];
        EXPECT_FALSE(s.is_ok()) << "count " << count << ", failing rank " << failing << ", rank " << r;
        EXPECT_NE(s.message().find("NaN in a trainer's buffer"), std::string::npos) << s.to_string();
        EXPECT_NE(s.message().find("rank " + std::to_string(failing)), std::string::npos) << s.to_string();
      }
    }
  }
  std::vector<float> nothing;
  run_group(2, small_chunks(), [&](int rank, std::unique_ptr<Communicator>& comm) {
    auto empty = failing_tensor(DType::kF32, 0, corrupt_data("unused"));
    const Status s = rank == 0 ? comm->allreduce(*empty, options_for(kPlan[0]))
                               : comm->allreduce(nothing.data(), 0, options_for(kPlan[0]));
    EXPECT_TRUE(s.is_ok()) << "an empty tensor has nothing to fail: " << s.to_string();
  });
}

TEST(TensorInterface, GpuScratchWithoutAGpuSaysWhyAndNeverCrashes) {
  auto scratch = CudaScratch::create(0);
  if (scratch.is_ok()) {
    // A machine with a GPU: the GPU checks (label gpu) cover it; here, host memory is refused.
    std::vector<float> host(16, 1.0f);
    auto tensor = cuda_tensor(host.data(), DType::kF32, host.size(), **scratch);
    EXPECT_EQ(tensor.status().code(), StatusCode::kInvalidArgument) << tensor.status().to_string();
    return;
  }
  EXPECT_EQ(scratch.status().code(), StatusCode::kUnavailable) << scratch.status().to_string();
  EXPECT_FALSE(scratch.status().message().empty());
  if (!cuda_tensors_built()) {
    EXPECT_NE(scratch.status().message().find("no CUDA support"), std::string::npos) << scratch.status().to_string();
  }
  EXPECT_EQ(CudaScratch::create(-1).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tern::collective
