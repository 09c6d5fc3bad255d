// GPU buffers through ternd (label gpu): trainers (threads, separate libtern connections) hand
// cudaMalloc'ed buffers to an in-process ternd via CUDA IPC; the results must equal the host
// reference bit for bit. Two trainers with GPU buffers: the local sum, mean and narrowing on the
// GPU; one of them on host memory: the GPU buffer is staged through the host; one trainer: the
// engine runs the CUDA codecs on the buffer in place. Skips without a usable GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include <nlohmann/json.hpp>

#include "daemon_test_util.h"
#include "tern/daemon/hierarchical.h"
#include "tern/tern.h"
#include "tern/transport/bootstrap.h"
#include "trainer_data.h"

namespace tern::daemon::test {
namespace {

// An in-process ternd on a socket of its own, on a machine with a usable GPU (else the test skips).
class DaemonGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      (void)cudaGetLastError();
      GTEST_SKIP() << "no usable CUDA device";
    }
    sock = dir.path() + "/t.sock";
    daemon = std::make_unique<TestDaemon>(test_config(sock));
  }

  TempDir dir;
  std::string sock;
  std::unique_ptr<TestDaemon> daemon;
};

// Operation 1: both trainers on the GPU (the local sum on the GPU); operation 2: trainer 1 on host
// memory (the node stages the GPU buffer through the host and sums on the CPU). Both must equal
// the host reference.
TEST_F(DaemonGpu, CudaBuffersOfTwoTrainersMatchTheHostReference) {
  tern_client_t* c[2];
  for (auto& x : c) ASSERT_EQ(tern_connect(sock.c_str(), &x), TERN_OK) << tern_last_error();
  tern_unique_id_t id;
  ASSERT_EQ(tern_get_unique_id(c[0], &id), TERN_OK);
  const std::size_t count = 100000;
  const auto dtype = kernels::DType::kF32;
  std::vector<std::uint8_t> results[2][2];  // [operation][rank]
  auto trainer = [&](int r) {
    tern_group_config_t gc{sizeof gc, r, 2, 2, 20000, 0};
    tern_group_t* g = nullptr;
    EXPECT_EQ(tern_group_join(c[r], &id, &gc, &g), TERN_OK) << tern_last_error();
    if (!g) return;
    for (int iter = 1; iter <= 2; ++iter) {
      const bool on_gpu = iter == 1 || r == 0;
      const auto input = trainer_input(1, r, iter, count, dtype);
      void* dev = nullptr;
      std::vector<std::uint8_t> host;
      void* buf = nullptr;
      if (on_gpu) {
        EXPECT_EQ(cudaMalloc(&dev, count * 4 + 4096), cudaSuccess);
        buf = static_cast<char*>(dev) + 4096;  // not the allocation's start: offsets must work
        EXPECT_EQ(cudaMemcpy(buf, input.data(), input.size(), cudaMemcpyHostToDevice), cudaSuccess);
      } else {
        host = input;
        buf = host.data();
      }
      EXPECT_EQ(tern_register(c[r], buf, count * 4), TERN_OK) << tern_last_error();
      tern_allreduce_args_t a;
      tern_allreduce_args_init(&a);
      a.buffer = buf;
      a.count = count;
      a.tensor_key = 1;
      EXPECT_EQ(tern_allreduce_sync(g, &a), TERN_OK) << tern_last_error();
      auto& out = results[iter - 1][r];
      out.resize(count * 4);
      if (on_gpu) {
        EXPECT_EQ(cudaMemcpy(out.data(), buf, count * 4, cudaMemcpyDeviceToHost), cudaSuccess);
      } else {
        std::memcpy(out.data(), buf, count * 4);
      }
      EXPECT_EQ(tern_deregister(c[r], buf), TERN_OK);
      if (dev) cudaFree(dev);
    }
    tern_group_destroy(g);
  };
  auto t1 = std::async(std::launch::async, trainer, 1);
  trainer(0);
  t1.get();
  collective::CommunicatorOptions comm;
  auto parsed = transport::UniqueId::parse(id.text);
  std::memcpy(&comm.seed, parsed->secret().data(), sizeof comm.seed);
  for (int iter = 1; iter <= 2; ++iter) {
    EXPECT_EQ(results[iter - 1][0], results[iter - 1][1]) << "operation " << iter;
    std::vector<std::vector<std::vector<std::uint8_t>>> inputs(1);
    for (int r = 0; r < 2; ++r) inputs[0].push_back(trainer_input(1, r, iter, count, dtype));
    collective::AllreduceOptions options;
    options.op = collective::ReduceOp::kMean;
    auto expected = hierarchical_reference(inputs, count, options, comm, static_cast<std::uint64_t>(iter));
    ASSERT_TRUE(expected.is_ok());
    EXPECT_EQ(results[iter - 1][0], *expected) << "operation " << iter;
  }
  const nlohmann::json status = nlohmann::json::parse((**daemon).status_json());
  ASSERT_EQ(status["groups"].size(), 1u) << status.dump();
  EXPECT_EQ(status["groups"][0]["ops_gpu_in_place"], 1) << "only operation 1 had GPU buffers only: " << status.dump();
  for (auto& x : c) tern_disconnect(x);
}

TEST_F(DaemonGpu, ALoneTrainersCudaBufferIsReducedInPlaceAndMatchesTheHostReference) {
  tern_client_t* c = nullptr;
  ASSERT_EQ(tern_connect(sock.c_str(), &c), TERN_OK) << tern_last_error();
  tern_unique_id_t id;
  ASSERT_EQ(tern_get_unique_id(c, &id), TERN_OK);
  tern_group_config_t gc{sizeof gc, 0, 1, 1, 20000, 0};
  tern_group_t* g = nullptr;
  ASSERT_EQ(tern_group_join(c, &id, &gc, &g), TERN_OK) << tern_last_error();
  collective::CommunicatorOptions comm;
  auto parsed = transport::UniqueId::parse(id.text);
  std::memcpy(&comm.seed, parsed->secret().data(), sizeof comm.seed);

  struct Case {
    std::size_t count;
    kernels::DType dtype;
    tern_codec_t codec;
    kernels::Codec engine_codec;
  };
  const Case cases[] = {
      {300007, kernels::DType::kF32, TERN_CODEC_TERNGRAD, kernels::Codec::kTernGrad},
      {100003, kernels::DType::kBf16, TERN_CODEC_TERNARY_EF, kernels::Codec::kTernaryEf},
      {4099, kernels::DType::kF16, TERN_CODEC_FP32, kernels::Codec::kFp32},
  };
  std::uint64_t op = 0;
  for (const Case& k : cases) {
    ++op;
    const std::size_t bytes = k.count * kernels::dtype_size(k.dtype);
    void* dev = nullptr;
    ASSERT_EQ(cudaMalloc(&dev, bytes + 256), cudaSuccess);
    void* buf = static_cast<char*>(dev) + 256;
    const auto input = trainer_input(1, 0, static_cast<int>(op), k.count, k.dtype);
    ASSERT_EQ(cudaMemcpy(buf, input.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(tern_register(c, buf, bytes), TERN_OK) << tern_last_error();
    tern_allreduce_args_t a;
    tern_allreduce_args_init(&a);
    a.buffer = buf;
    a.count = k.count;
    a.dtype = static_cast<tern_dtype_t>(k.dtype);
    a.scatter_codec = a.gather_codec = k.codec;
    a.tensor_key = op;
    EXPECT_EQ(tern_allreduce_sync(g, &a), TERN_OK) << tern_last_error();
    std::vector<std::uint8_t> result(bytes);
    EXPECT_EQ(cudaMemcpy(result.data(), buf, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(tern_deregister(c, buf), TERN_OK);
    cudaFree(dev);

    std::vector<std::vector<std::vector<std::uint8_t>>> inputs{{input}};
    collective::AllreduceOptions options;
    options.op = collective::ReduceOp::kMean;
    options.dtype = k.dtype;
    options.scatter_codec = options.gather_codec = k.engine_codec;
    auto expected = hierarchical_reference(inputs, k.count, options, comm, op);
    ASSERT_TRUE(expected.is_ok()) << expected.status().to_string();
    EXPECT_EQ(result, *expected) << "case " << op;
    EXPECT_NE(result, input) << "case " << op << ": the allreduce changed nothing";
  }
  // The in-place path ran (not the staging one).
  const nlohmann::json status = nlohmann::json::parse((**daemon).status_json());
  ASSERT_EQ(status["groups"].size(), 1u) << status.dump();
  EXPECT_EQ(status["groups"][0]["ops_gpu_in_place"], op) << status.dump();
  tern_group_destroy(g);
  tern_disconnect(c);
}

}  // namespace
}  // namespace tern::daemon::test
