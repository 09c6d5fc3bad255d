// tern-engine-gpu-check: the collective engine on GPU tensors (cuda_tensor.h), checked and timed
// on a machine with a GPU. No GoogleTest, so that scripts/gpu-check.sh builds it on a bare GPU box.
//
//   tern-engine-gpu-check [--quick] [--no-bench]
//
// Check: ranks as threads over the loopback transport run a plan of allreduces (every codec and
// dtype, sizes from 0 to several pipeline chunks, an error-feedback key used twice) three ways:
// every rank on host buffers, every rank on GPU tensors, and rank 0 on host with the others on
// GPU. Every rank's result of every operation must equal the all-host run's bit for bit (the
// all-host run itself is checked against reference_allreduce by the CPU test suite).
// Bench: a 64 MiB fp32 terngrad allreduce on 2 ranks, GPU tensors in place vs staging the whole
// buffer through the host (the path ternd takes for several local trainers) vs host buffers.
// Exit status: 0 pass, 1 a mismatch or failed operation, 77 no usable GPU, 2 usage error.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tern/kernels/float16.h"
#include "tern/transport/collective.h"
#include "tern/transport/cuda_tensor.h"
#include "tern/transport/loopback.h"

namespace tern::collective {
namespace {

using kernels::Codec;
using kernels::DType;

enum class Layout { kHost, kGpu, kMixed };
const char* layout_name(Layout l) { return l == Layout::kHost ? "host" : l == Layout::kGpu ? "gpu" : "mixed"; }

struct Planned {
  std::size_t count;
  DType dtype;
  Codec codec;
  std::uint64_t key;
};

std::vector<Planned> make_plan(bool quick) {
  std::vector<Planned> plan;
  std::uint64_t key = 1;
  const std::vector<std::size_t> counts = quick ? std::vector<std::size_t>{0, 1, 4099, 300007}
                                                : std::vector<std::size_t>{0, 1, 4099, 300007, 4u << 20};
  for (Codec codec : {Codec::kFp32, Codec::kFp16, Codec::kBf16, Codec::kTernGrad, Codec::kTernaryEf, Codec::kSignEf})
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBf16})
      for (std::size_t count : counts) plan.push_back({count, dtype, codec, key++});
  plan.push_back({300007, DType::kF32, Codec::kTernaryEf, 7777});  // the same key twice: residuals carry over
  plan.push_back({300007, DType::kF32, Codec::kTernaryEf, 7777});
  return plan;
}

std::vector<std::uint8_t> input_of(int rank, std::size_t op, const Planned& p) {
  std::mt19937_64 rng(1000 + 100 * static_cast<std::uint64_t>(rank) + op);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(p.count);
  for (float& v : values) v = normal(rng);
  std::vector<std::uint8_t> bytes(p.count * kernels::dtype_size(p.dtype));
  for (std::size_t i = 0; i < p.count; ++i) {
    if (p.dtype == DType::kF32) {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
    } else {
      const std::uint16_t h = p.dtype == DType::kF16 ? kernels::float_to_fp16(values[i]) : kernels::float_to_bf16(values[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return bytes;
}

AllreduceOptions options_for(const Planned& p) {
  AllreduceOptions o;
  o.dtype = p.dtype;
  o.scatter_codec = o.gather_codec = p.codec;
  o.tensor_key = p.key;
  o.timeout = std::chrono::seconds(60);
  return o;
}

bool cuda_ok(cudaError_t e, const char* what, std::string* error) {
  if (e == cudaSuccess) return true;
  *error = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}

// Runs `body(rank, comm)` on `ranks` threads over one loopback hub.
bool run_group(int ranks, const CommunicatorOptions& options,
               const std::function<void(int, Communicator&)>& body) {
  auto transports = transport::make_loopback_group(ranks);
  std::vector<std::unique_ptr<Communicator>> comms;
  for (auto& t : transports) {
    auto c = Communicator::create(std::move(t), options);
    if (!c.is_ok()) {
      std::fprintf(stderr, "communicator: %s\n", c.status().to_string().c_str());
      return false;
    }
    comms.push_back(std::move(*c));
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) threads.emplace_back([&, r] { body(r, *comms[static_cast<std::size_t>(r)]); });
  for (auto& t : threads) t.join();
  return true;
}

using Results = std::vector<std::vector<std::vector<std::uint8_t>>>;  // [rank][op]

// Runs the plan; returns false (and says why) when an operation fails.
bool run_plan(const std::vector<Planned>& plan, int ranks, Layout layout, Results* out) {
  out->assign(static_cast<std::size_t>(ranks), {});
  std::vector<std::string> errors(static_cast<std::size_t>(ranks));
  CommunicatorOptions copt;
  copt.pipeline_chunk_elements = 1u << 15;  // several chunks per shard at 300007 elements
  const bool formed = run_group(ranks, copt, [&](int rank, Communicator& comm) {
    std::string& error = errors[static_cast<std::size_t>(rank)];
    const bool on_gpu = layout == Layout::kGpu || (layout == Layout::kMixed && rank != 0);
    std::unique_ptr<CudaScratch> scratch;
    if (on_gpu) {
      (void)cudaSetDevice(0);
      auto s = CudaScratch::create(0);
      if (!s.is_ok()) {
        error = s.status().to_string();
        return;
      }
      scratch = std::move(*s);
    }
    for (std::size_t i = 0; i < plan.size(); ++i) {
      auto data = input_of(rank, i, plan[i]);
      Status s;
      if (!on_gpu) {
        s = comm.allreduce(data.data(), plan[i].count, options_for(plan[i]));
      } else {
        void* device = nullptr;
        if (!cuda_ok(cudaMalloc(&device, std::max<std::size_t>(data.size(), 1)), "cudaMalloc", &error) ||
            !cuda_ok(cudaMemcpy(device, data.data(), data.size(), cudaMemcpyHostToDevice), "H2D", &error))
          return;
        auto tensor = cuda_tensor(device, plan[i].dtype, plan[i].count, *scratch);
        s = tensor.is_ok() ? comm.allreduce(**tensor, options_for(plan[i])) : tensor.status();
        if (!cuda_ok(cudaMemcpy(data.data(), device, data.size(), cudaMemcpyDeviceToHost), "D2H", &error)) return;
        (void)cudaFree(device);
      }
      if (!s.is_ok()) {
        error = "op " + std::to_string(i) + ": " + s.to_string();
        return;
      }
      (*out)[static_cast<std::size_t>(rank)].push_back(std::move(data));
    }
  });
  bool ok = formed;
  for (int r = 0; r < ranks; ++r)
    if (!errors[static_cast<std::size_t>(r)].empty()) {
      std::printf("FAIL %s, %d ranks, rank %d: %s\n", layout_name(layout), ranks, r,
                  errors[static_cast<std::size_t>(r)].c_str());
      ok = false;
    }
  return ok;
}

int check(bool quick) {
  const auto plan = make_plan(quick);
  int compared = 0, mismatched = 0;
  for (int ranks : {1, 3}) {
    Results host;
    if (!run_plan(plan, ranks, Layout::kHost, &host)) return 1;
    for (Layout layout : {Layout::kGpu, Layout::kMixed}) {
      Results got;
      if (!run_plan(plan, ranks, layout, &got)) return 1;
      for (int r = 0; r < ranks; ++r)
        for (std::size_t i = 0; i < plan.size(); ++i) {
          ++compared;
          const auto& want = host[0][i];
          const auto& have = got[static_cast<std::size_t>(r)][i];
          if (have == want) continue;
          if (++mismatched <= 10) {
            std::size_t at = 0;
            while (at < want.size() && at < have.size() && want[at] == have[at]) ++at;
            std::printf("MISMATCH %s, %d ranks, rank %d, op %zu (%zu %s, %s): first differing byte %zu\n",
                        layout_name(layout), ranks, r, i, plan[i].count,
                        std::string(kernels::dtype_name(plan[i].dtype)).c_str(),
                        std::string(kernels::codec_name(plan[i].codec)).c_str(), at);
          }
        }
    }
  }
  std::printf("check: %d results compared, %d mismatched (GPU tensors vs host buffers, bit for bit)\n", compared,
              mismatched);
  return mismatched == 0 ? 0 : 1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// 64 MiB fp32 terngrad on 2 ranks: median ms of 7 runs for each way of holding the tensor.
int bench() {
  const std::size_t count = 16u << 20, bytes = count * 4;
  const Planned p{count, DType::kF32, Codec::kTernGrad, 1};
  std::printf("bench: %zu-byte fp32 terngrad allreduce, 2 ranks (threads, loopback), median of 7 after 2 warm-up\n",
              bytes);
  double ms[3] = {0, 0, 0};
  const char* names[3] = {"host buffers (baseline)", "GPU tensors in place", "GPU buffers staged whole"};
  for (int way = 0; way < 3; ++way) {
    std::vector<std::vector<double>> times(2);
    std::string error;
    run_group(2, CommunicatorOptions{}, [&](int rank, Communicator& comm) {
      auto data = input_of(rank, 0, p);
      void* device = nullptr;
      std::unique_ptr<CudaScratch> scratch;
      std::vector<std::uint8_t> staging(bytes);
      if (way > 0) {
        (void)cudaSetDevice(0);
        if (!cuda_ok(cudaMalloc(&device, bytes), "cudaMalloc", &error)) return;
        auto s = CudaScratch::create(0);
        if (!s.is_ok()) {
          error = s.status().to_string();
          return;
        }
        scratch = std::move(*s);
      }
      for (int it = 0; it < 9; ++it) {
        if (way > 0 && !cuda_ok(cudaMemcpy(device, data.data(), bytes, cudaMemcpyHostToDevice), "H2D", &error))
          return;
        const auto t0 = std::chrono::steady_clock::now();
        Status s;
        if (way == 0) {
          s = comm.allreduce(data.data(), count, options_for(p));
        } else if (way == 1) {
          auto tensor = cuda_tensor(device, p.dtype, count, *scratch);
          s = tensor.is_ok() ? comm.allreduce(**tensor, options_for(p)) : tensor.status();
        } else {
          (void)cudaMemcpy(staging.data(), device, bytes, cudaMemcpyDeviceToHost);
          s = comm.allreduce(staging.data(), count, options_for(p));
          (void)cudaMemcpy(device, staging.data(), bytes, cudaMemcpyHostToDevice);
        }
        const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (!s.is_ok()) {
          error = s.to_string();
          return;
        }
        if (it >= 2) times[static_cast<std::size_t>(rank)].push_back(t);
        if (way == 0) data = input_of(rank, 0, p);
      }
      if (device) (void)cudaFree(device);
    });
    if (!error.empty()) {
      std::printf("FAIL bench %s: %s\n", names[way], error.c_str());
      return 1;
    }
    ms[way] = std::max(median(times[0]), median(times[1]));
  }
  for (int way = 0; way < 3; ++way)
    std::printf("  %-28s %9.2f ms  %.2fx the host-buffer time\n", names[way], ms[way], ms[way] / ms[0]);
  return 0;
}

}  // namespace
}  // namespace tern::collective

int main(int argc, char** argv) {
  bool quick = false, run_bench = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--no-bench") {
      run_bench = false;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--no-bench]\n", argv[0]);
      return 2;
    }
  }
  auto scratch = tern::collective::CudaScratch::create(0);
  if (!scratch.is_ok()) {
    std::printf("NO GPU: %s\n", scratch.status().to_string().c_str());
    return 77;
  }
  scratch->reset();
  int rc = tern::collective::check(quick);
  if (rc == 0 && run_bench) rc = tern::collective::bench();
  std::printf("%s\n", rc == 0 ? "ENGINE GPU CHECK: PASS" : "ENGINE GPU CHECK: FAIL");
  return rc;
}
