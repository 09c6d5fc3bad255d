// ternd end to end: an in-process Daemon (or two, as two "nodes" on loopback) and trainer
// processes using libtern. Results must be bit-identical on every trainer and equal to
// hierarchical_reference() (the local fp32 sums through collective::reference_allreduce).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>

#include "daemon_test_util.h"
#include "tern/daemon/hierarchical.h"
#include "tern/transport/bootstrap.h"
#include "tern/tern.h"
#include "trainer_data.h"

namespace tern::daemon::test {
namespace {

using namespace std::chrono_literals;

std::string unique_id(const std::string& socket) {
  tern_client_t* c = nullptr;
  if (tern_connect(socket.c_str(), &c) != TERN_OK) {
    ADD_FAILURE() << tern_last_error();
    return {};
  }
  tern_unique_id_t id{};
  EXPECT_EQ(tern_get_unique_id(c, &id), TERN_OK) << tern_last_error();
  tern_disconnect(c);
  return id.text;
}

struct Shape {
  int nodes = 1, local = 2, iters = 2;
  std::size_t count = 1000;
  kernels::DType dtype = kernels::DType::kF32;
  collective::ReduceOp op = collective::ReduceOp::kSum;
  kernels::Codec scatter = kernels::Codec::kTernGrad, gather = kernels::Codec::kTernGrad;
  bool registered = false;
  std::uint32_t poll_us = 0;  ///< ternd's ring polling after a submission (config control.poll_us)
  int inflight = 1;           ///< allreduces each trainer submits before waiting for them
};

std::vector<std::string> trainer_args(const Shape& s, const std::string& socket, const std::string& id, int rank) {
  return {"--socket", socket, "--id", id, "--rank", std::to_string(rank), "--nranks",
          std::to_string(s.nodes * s.local), "--local", std::to_string(s.local), "--iters", std::to_string(s.iters),
          "--count", std::to_string(s.count), "--dtype", std::to_string(static_cast<int>(s.dtype)), "--op",
          std::to_string(static_cast<int>(s.op)), "--scatter", std::to_string(static_cast<int>(s.scatter)),
          "--gather", std::to_string(static_cast<int>(s.gather)), "--registered", s.registered ? "1" : "0",
          "--inflight", std::to_string(s.inflight)};
}

// The seed ternd uses when the trainers pass 0: the first 8 bytes of the id's secret.
std::uint64_t seed_of(const std::string& id_text) {
  auto id = transport::UniqueId::parse(id_text);
  std::uint64_t v;
  std::memcpy(&v, id->secret().data(), sizeof v);
  return v;
}

void run_and_check(const Shape& shape) {
  TempDir dir;
  std::vector<std::unique_ptr<TestDaemon>> daemons;
  std::vector<std::string> sockets;
  for (int n = 0; n < shape.nodes; ++n) {
    sockets.push_back(dir.path() + "/node" + std::to_string(n) + ".sock");
    DaemonConfig config = test_config(sockets.back());
    config.poll_us = shape.poll_us;
    daemons.push_back(std::make_unique<TestDaemon>(config));
    ASSERT_TRUE(daemons.back()->ok());
  }
  const std::string id = unique_id(sockets[0]);
  ASSERT_FALSE(id.empty());
  std::vector<std::unique_ptr<Trainer>> trainers;
  const int nranks = shape.nodes * shape.local;
  for (int r = 0; r < nranks; ++r)
    trainers.push_back(std::make_unique<Trainer>(trainer_args(shape, sockets[static_cast<std::size_t>(r / shape.local)], id, r),
                                                 dir.path() + "/out" + std::to_string(r)));
  for (auto& t : trainers) EXPECT_EQ(t->wait(60s), 0) << t->output().substr(0, 300);
  if (shape.poll_us > 0) {
    // The trainers submit again within microseconds of a completion: with a 100 ms poll some of
    // those submissions must have been found by the poll rather than by their doorbell.
    const auto status = nlohmann::json::parse((*daemons[0])->status_json());
    EXPECT_GT(status.at("daemon").at("submissions_polled").get<std::uint64_t>(), 0u) << status.dump();
  }

  if (shape.inflight > 1 && shape.local == 1 && shape.nodes > 1) {
    // Several operations queued at once on one-trainer nodes: ternd runs them overlapped.
    std::uint64_t overlapped = 0;
    for (auto& d : daemons) {  // the groups are gone with their trainers: the daemon's total
      const auto status = nlohmann::json::parse((**d).status_json());
      overlapped += status.at("daemon").at("ops_overlapped").get<std::uint64_t>();
    }
    EXPECT_GT(overlapped, 0u) << "no operation ran overlapped with another";
  }

  const std::size_t bytes = shape.count * kernels::dtype_size(shape.dtype);
  const std::string first = trainers[0]->output();
  ASSERT_EQ(first.substr(0, 3), "ok\n") << first.substr(0, 300);
  ASSERT_EQ(first.size(), 3 + bytes * static_cast<std::size_t>(shape.iters));
  for (int r = 1; r < nranks; ++r) EXPECT_EQ(trainers[static_cast<std::size_t>(r)]->output(), first) << "rank " << r << " differs from rank 0";

  collective::AllreduceOptions options;
  options.op = shape.op;
  options.dtype = shape.dtype;
  options.scatter_codec = shape.scatter;
  options.gather_codec = shape.gather;
  collective::CommunicatorOptions comm;
  comm.seed = seed_of(id);
  for (int iter = 1; iter <= shape.iters; ++iter) {
    std::vector<std::vector<std::vector<std::uint8_t>>> inputs(static_cast<std::size_t>(shape.nodes));
    for (int r = 0; r < nranks; ++r)
      inputs[static_cast<std::size_t>(r / shape.local)].push_back(trainer_input(1, r, iter, shape.count, shape.dtype));
    auto expected = hierarchical_reference(inputs, shape.count, options, comm, static_cast<std::uint64_t>(iter));
    ASSERT_TRUE(expected.is_ok()) << expected.status().to_string();
    const std::string got = first.substr(3 + bytes * static_cast<std::size_t>(iter - 1), bytes);
    EXPECT_EQ(0, std::memcmp(got.data(), expected->data(), bytes)) << "iteration " << iter << " differs from the reference";
  }
}

TEST(DaemonE2E, OneNodeTwoTrainersTernGradMatchReference) { run_and_check(Shape{}); }

TEST(DaemonE2E, OneNodeFourTrainersFp16MeanTernaryEf) {
  Shape s;
  s.local = 4;
  s.dtype = kernels::DType::kF16;
  s.op = collective::ReduceOp::kMean;
  s.scatter = kernels::Codec::kTernaryEf;
  s.gather = kernels::Codec::kBf16;
  s.count = 777;
  run_and_check(s);
}

TEST(DaemonE2E, OneNodeFourTrainersWithRingPolling) {
  Shape s;
  s.local = 4;
  s.iters = 20;
  s.poll_us = 100'000;
  run_and_check(s);
}

TEST(DaemonE2E, OneNodeRegisteredHostMemoryBf16) {
  Shape s;
  s.dtype = kernels::DType::kBf16;
  s.registered = true;
  s.op = collective::ReduceOp::kMean;
  run_and_check(s);
}

TEST(DaemonE2E, TwoNodesOnLoopbackTwoTrainersEach) {
  Shape s;
  s.nodes = 2;
  s.count = 5000;
  s.op = collective::ReduceOp::kMean;
  run_and_check(s);
}

TEST(DaemonE2E, ThreeNodesOneTrainerEachEqualLibraryModeFp16) {
  Shape s;  // local_size 1: ternd runs the engine in place, exactly as library mode would
  s.nodes = 3;
  s.local = 1;
  s.dtype = kernels::DType::kF16;
  s.op = collective::ReduceOp::kMean;
  s.scatter = kernels::Codec::kSignEf;
  run_and_check(s);
}

TEST(DaemonE2E, ThreeNodesOneTrainerEachOverlappedOperationsEqualTheReference) {
  Shape s;  // four submitted at once, every time: ternd runs two at a time, the bits must not change
  s.nodes = 3;
  s.local = 1;
  s.iters = 12;
  s.inflight = 4;
  s.count = 70001;
  s.scatter = kernels::Codec::kTernaryEf;  // error feedback: per-key residuals under overlap
  s.gather = kernels::Codec::kTernGrad;
  run_and_check(s);
}

}  // namespace
}  // namespace tern::daemon::test
