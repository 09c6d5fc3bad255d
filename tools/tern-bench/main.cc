// tern-bench: allreduce throughput and correctness, like nccl-tests' all_reduce_perf.
//
//   tern-bench --threads 4 -b 1K -e 64M -f 4 --codec terngrad,fp32
//
// Group formation: --threads N runs N ranks as threads over the in-process loopback transport
// (measures the engine and codecs without a network). Process modes over UCX join later.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <thread>

#include "bench.h"
#include "tern/transport/loopback.h"

namespace {

using namespace tern;

Result<std::size_t> parse_size(const std::string& text) {
  if (text.empty()) return invalid_argument("empty size");
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &pos);
  } catch (...) {
    return invalid_argument("bad size '" + text + "'");
  }
  const std::string suffix = text.substr(pos);
  if (suffix == "K" || suffix == "k") v <<= 10;
  else if (suffix == "M" || suffix == "m") v <<= 20;
  else if (suffix == "G" || suffix == "g") v <<= 30;
  else if (!suffix.empty()) return invalid_argument("bad size suffix in '" + text + "' (use K, M or G)");
  return static_cast<std::size_t>(v);
}

Result<std::vector<kernels::Codec>> parse_codecs(const std::string& list) {
  std::vector<kernels::Codec> out;
  if (list == "all") {
    for (int c = 0; c < kernels::kCodecCount; ++c) out.push_back(static_cast<kernels::Codec>(c));
    return out;
  }
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = list.find(',', start);
    const std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    TERN_ASSIGN_OR_RETURN(kernels::Codec codec, kernels::parse_codec(name));
    out.push_back(codec);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int run_threads(int ranks, const bench::BenchConfig& config, const collective::CommunicatorOptions& copt) {
  auto transports = transport::make_loopback_group(ranks);
  std::vector<std::unique_ptr<collective::Communicator>> comms;
  for (auto& t : transports) {
    auto c = collective::Communicator::create(std::move(t), copt);
    if (!c.is_ok()) {
      std::fprintf(stderr, "tern-bench: %s\n", c.status().to_string().c_str());
      return 1;
    }
    comms.push_back(std::move(*c));
  }
  bench::print_header(config, ranks, comms[0]->transport().capabilities().description);
  std::vector<Result<std::vector<bench::BenchRow>>> results(static_cast<std::size_t>(ranks), internal_error("not run"));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] { results[static_cast<std::size_t>(r)] = bench::run_sweep(*comms[static_cast<std::size_t>(r)], config); });
  for (auto& t : threads) t.join();
  int rc = 0;
  for (int r = 0; r < ranks; ++r) {
    const auto& res = results[static_cast<std::size_t>(r)];
    if (!res.is_ok()) {
      std::fprintf(stderr, "tern-bench: rank %d: %s\n", r, res.status().to_string().c_str());
      rc = 1;
      continue;
    }
    for (const auto& row : *res)
      if (row.wrong > 0) rc = 1;
  }
  if (rc == 0 && !config.json_path.empty()) {
    const Status s = bench::write_json(config.json_path, config, ranks, comms[0]->transport().capabilities().description,
                                       *results[0]);
    if (!s.is_ok()) {
      std::fprintf(stderr, "tern-bench: %s\n", s.to_string().c_str());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tern-bench: compressed allreduce performance and correctness (nccl-tests style)"};
  std::string min_bytes = "8", max_bytes = "64M", codecs = "terngrad", gather, dtype = "fp32", op = "sum";
  bench::BenchConfig config;
  collective::CommunicatorOptions copt;
  int threads = 0;
  long long timeout_ms = 30000;
  app.add_option("-b,--minbytes", min_bytes, "smallest size in bytes (K/M/G suffixes)")->capture_default_str();
  app.add_option("-e,--maxbytes", max_bytes, "largest size in bytes")->capture_default_str();
  app.add_option("-f,--stepfactor", config.step_factor, "size multiplier between rows")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  app.add_option("-w,--warmup_iters", config.warmup, "untimed operations per size")->capture_default_str()->check(CLI::Range(0, 100000));
  app.add_option("-n,--iters", config.iters, "timed operations per size")->capture_default_str()->check(CLI::Range(1, 1000000));
  app.add_option("--codec", codecs, "codecs to run, comma-separated, or 'all' (fp32,fp16,bf16,terngrad,ternary-ef,sign-ef)")->capture_default_str();
  app.add_option("--gather-codec", gather, "allgather codec (default: the reduce-scatter codec)");
  app.add_option("-d,--dtype", dtype, "element type: fp32, fp16, bf16")->capture_default_str();
  app.add_option("-o,--op", op, "reduction: sum or mean")->capture_default_str()->check(CLI::IsMember({"sum", "mean"}));
  app.add_option("--block", config.block_size, "elements per scale block")->capture_default_str();
  app.add_option("-c,--check", config.check, "check each size against the reference (1/0)")->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "deadline of each operation")->capture_default_str()->check(CLI::Range(1LL, 3600000LL));
  app.add_option("--chunk", copt.pipeline_chunk_elements, "pipeline chunk in elements")->capture_default_str()->check(CLI::Range(1u, 1u << 30));
  app.add_option("--window", copt.pipeline_window, "pipeline chunks in flight")->capture_default_str()->check(CLI::Range(1u, 1024u));
  app.add_option("--seed", copt.seed, "group seed for terngrad's rounding")->capture_default_str();
  app.add_option("--json", config.json_path, "also write the results as JSON to this file");
  app.add_option("--threads", threads, "run N ranks as threads over the in-process loopback transport")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  auto fail_usage = [](const Status& s) {
    std::fprintf(stderr, "tern-bench: %s\n", s.message().c_str());
    return 2;
  };
  auto lo = parse_size(min_bytes), hi = parse_size(max_bytes);
  if (!lo.is_ok()) return fail_usage(lo.status());
  if (!hi.is_ok()) return fail_usage(hi.status());
  if (*lo > *hi) return fail_usage(invalid_argument("--minbytes is larger than --maxbytes"));
  config.min_bytes = *lo;
  config.max_bytes = *hi;
  auto parsed_codecs = parse_codecs(codecs);
  if (!parsed_codecs.is_ok()) return fail_usage(parsed_codecs.status());
  config.codecs = *parsed_codecs;
  if (!gather.empty()) {
    auto g = kernels::parse_codec(gather);
    if (!g.is_ok()) return fail_usage(g.status());
    config.gather_same_as_scatter = false;
    config.gather_codec = *g;
  }
  auto d = kernels::parse_dtype(dtype);
  if (!d.is_ok()) return fail_usage(d.status());
  config.dtype = *d;
  config.op = op == "sum" ? collective::ReduceOp::kSum : collective::ReduceOp::kMean;
  config.timeout = std::chrono::milliseconds(timeout_ms);
  if (auto s = kernels::encoded_size(kernels::Codec::kTernGrad, config.block_size, 0); !s.is_ok()) return fail_usage(s.status());

  if (threads > 0) return run_threads(threads, config, copt);
  std::fprintf(stderr, "tern-bench: choose how to form the group: --threads N\n");
  return 2;
}
