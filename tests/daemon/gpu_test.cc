// GPU buffers through ternd (label gpu): two trainers (threads, separate libtern connections) hand
// cudaMalloc'ed buffers to an in-process ternd via CUDA IPC; the results must equal the host
// reference bit for bit. Skips without a usable GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "daemon_test_util.h"
#include "tern/daemon/hierarchical.h"
#include "tern/tern.h"
#include "tern/transport/bootstrap.h"
#include "trainer_data.h"

namespace tern::daemon::test {
namespace {

TEST(DaemonGpu, CudaBuffersOfTwoTrainersMatchTheHostReference) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    (void)cudaGetLastError();
    GTEST_SKIP() << "no usable CUDA device";
  }
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(test_config(sock));
  tern_client_t* c[2];
  for (auto& x : c) ASSERT_EQ(tern_connect(sock.c_str(), &x), TERN_OK) << tern_last_error();
  tern_unique_id_t id;
  ASSERT_EQ(tern_get_unique_id(c[0], &id), TERN_OK);
  const std::size_t count = 100000;
  const auto dtype = kernels::DType::kF32;
  std::vector<std::uint8_t> results[2];
  auto trainer = [&](int r) {
    tern_group_config_t gc{sizeof gc, r, 2, 2, 20000, 0};
    tern_group_t* g = nullptr;
    EXPECT_EQ(tern_group_join(c[r], &id, &gc, &g), TERN_OK) << tern_last_error();
    if (!g) return;
    void* dev = nullptr;
    EXPECT_EQ(cudaMalloc(&dev, count * 4 + 4096), cudaSuccess);
    void* buf = static_cast<char*>(dev) + 4096;  // not the allocation's start: offsets must work
    const auto input = trainer_input(1, r, 1, count, dtype);
    EXPECT_EQ(cudaMemcpy(buf, input.data(), input.size(), cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(tern_register(c[r], buf, count * 4), TERN_OK) << tern_last_error();
    tern_allreduce_args_t a;
    tern_allreduce_args_init(&a);
    a.buffer = buf;
    a.count = count;
    a.tensor_key = 1;
    EXPECT_EQ(tern_allreduce_sync(g, &a), TERN_OK) << tern_last_error();
    results[r].resize(count * 4);
    EXPECT_EQ(cudaMemcpy(results[r].data(), buf, count * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(tern_deregister(c[r], buf), TERN_OK);
    cudaFree(dev);
    tern_group_destroy(g);
  };
  auto t1 = std::async(std::launch::async, trainer, 1);
  trainer(0);
  t1.get();
  EXPECT_EQ(results[0], results[1]);
  std::vector<std::vector<std::vector<std::uint8_t>>> inputs(1);
  for (int r = 0; r < 2; ++r) inputs[0].push_back(trainer_input(1, r, 1, count, dtype));
  collective::AllreduceOptions options;
  options.op = collective::ReduceOp::kMean;
  collective::CommunicatorOptions comm;
  auto parsed = transport::UniqueId::parse(id.text);
  std::memcpy(&comm.seed, parsed->secret().data(), sizeof comm.seed);
  auto expected = hierarchical_reference(inputs, count, options, comm, 1);
  ASSERT_TRUE(expected.is_ok());
  EXPECT_EQ(results[0], *expected);
  for (auto& x : c) tern_disconnect(x);
}

}  // namespace
}  // namespace tern::daemon::test
