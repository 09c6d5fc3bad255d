// tern-bench: allreduce throughput and correctness, like nccl-tests' all_reduce_perf.
//
//   tern-bench --threads 4 -b 1K -e 64M -f 4 --codec terngrad,fp32
//
// Group formation:
//   --threads N        N ranks as threads over the in-process loopback transport (engine and codecs,
//                      no network)
//   --procs N          N ranks as processes on this machine over UCX (TCP / shared memory)
//   --unique-id ID --rank R --nranks N
//                      join a group across machines (rank 0 hosts the rendezvous at ID's host:port);
//                      make an ID with --make-unique-id HOST:PORT
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "bench.h"
#include "tern/transport/group.h"
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

std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> items;
  std::size_t start = 0;
  for (std::size_t comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1)
    items.push_back(list.substr(start, comma - start));
  items.push_back(list.substr(start));
  return items;
}

Result<std::vector<kernels::Codec>> parse_codecs(const std::string& list) {
  std::vector<kernels::Codec> out;
  if (list == "all") {
    for (int c = 0; c < kernels::kCodecCount; ++c) out.push_back(static_cast<kernels::Codec>(c));
    return out;
  }
  for (const std::string& name : split_commas(list)) {
    TERN_ASSIGN_OR_RETURN(kernels::Codec codec, kernels::parse_codec(name));
    out.push_back(codec);
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

// Runs the sweep as one member of a group formed over UCX. Only rank 0 prints.
int run_member(const transport::UniqueId& id, int rank, int nranks, const bench::BenchConfig& config,
               const collective::CommunicatorOptions& copt) {
  transport::GroupOptions options;
  options.communicator = copt;
  auto group = transport::Group::form(id, rank, nranks, options);
  if (!group.is_ok()) {
    std::fprintf(stderr, "tern-bench: rank %d: %s\n", rank, group.status().to_string().c_str());
    return 1;
  }
  auto& comm = (*group)->communicator();
  // One small allreduce first: endpoints connect lazily, and the header reports what UCX picked.
  float probe = 1.0f;
  collective::AllreduceOptions warm;
  warm.scatter_codec = warm.gather_codec = kernels::Codec::kFp32;
  if (Status s = comm.allreduce(&probe, 1, warm); !s.is_ok()) {
    std::fprintf(stderr, "tern-bench: rank %d: %s\n", rank, s.to_string().c_str());
    return 1;
  }
  if (rank == 0) {
    bench::print_header(config, nranks, comm.transport().capabilities().description);
    std::printf("# endpoints: %s\n", (*group)->describe_transports().c_str());
  }
  auto rows = bench::run_sweep(comm, config);
  if (!rows.is_ok()) {
    std::fprintf(stderr, "tern-bench: rank %d: %s\n", rank, rows.status().to_string().c_str());
    return 1;
  }
  int rc = 0;
  for (const auto& row : *rows)
    if (row.wrong > 0) rc = 1;
  if (rank == 0 && !config.json_path.empty()) {
    if (Status s = bench::write_json(config.json_path, config, nranks, comm.transport().capabilities().description, *rows);
        !s.is_ok()) {
      std::fprintf(stderr, "tern-bench: %s\n", s.to_string().c_str());
      rc = 1;
    }
  }
  return rc;
}

// A port that was free a moment ago on 127.0.0.1, for a local rendezvous.
Result<std::uint16_t> free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return unavailable("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = std::strerror(errno);
    close(fd);
    return unavailable("bind: " + err);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

int run_processes(int nranks, const bench::BenchConfig& config, const collective::CommunicatorOptions& copt) {
  auto port = free_local_port();
  if (!port.is_ok()) {
    std::fprintf(stderr, "tern-bench: %s\n", port.status().to_string().c_str());
    return 1;
  }
  auto id = transport::UniqueId::generate("127.0.0.1", *port);
  if (!id.is_ok()) {
    std::fprintf(stderr, "tern-bench: %s\n", id.status().to_string().c_str());
    return 1;
  }
  std::fflush(stdout);
  std::vector<pid_t> children;
  for (int r = 0; r < nranks; ++r) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("tern-bench: fork");
      for (pid_t c : children) kill(c, SIGKILL);
      return 1;
    }
    if (pid == 0) _exit(run_member(*id, r, nranks, config, copt));
    children.push_back(pid);
  }
  int rc = 0;
  for (int r = 0; r < nranks; ++r) {
    int status = 0;
    waitpid(children[static_cast<std::size_t>(r)], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "tern-bench: rank %d %s %d\n", r, WIFEXITED(status) ? "exited with" : "killed by signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
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
  std::string size_list;
  app.add_option("--sizes", size_list, "explicit comma-separated sizes in bytes (K/M/G), instead of -b/-e/-f");
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
  int procs = 0, rank = -1, nranks = 0;
  std::string unique_id, make_id;
  app.add_option("--threads", threads, "run N ranks as threads over the in-process loopback transport")->check(CLI::Range(1, 64));
  app.add_option("--procs", procs, "run N ranks as processes on this machine over UCX")->check(CLI::Range(1, 64));
  app.add_option("--unique-id", unique_id, "join the group with this id (from --make-unique-id)");
  app.add_option("--rank", rank, "this member's rank (with --unique-id)")->check(CLI::Range(0, 65535));
  app.add_option("--nranks", nranks, "group size (with --unique-id)")->check(CLI::Range(1, 65536));
  app.add_option("--make-unique-id", make_id, "print a new unique id for a rendezvous at HOST:PORT and exit");
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log group formation and membership changes");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);

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
  if (!size_list.empty()) {
    for (const std::string& item : split_commas(size_list)) {
      auto size = parse_size(item);
      if (!size.is_ok()) return fail_usage(size.status());
      config.sizes.push_back(*size);
    }
  }
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

  if (!make_id.empty()) {
    const auto colon = make_id.rfind(':');
    if (colon == std::string::npos) return fail_usage(invalid_argument("--make-unique-id wants HOST:PORT"));
    int port = 0;
    try {
      port = std::stoi(make_id.substr(colon + 1));
    } catch (...) {
      port = -1;
    }
    if (port <= 0 || port > 65535) return fail_usage(invalid_argument("bad port in '" + make_id + "'"));
    auto id = transport::UniqueId::generate(make_id.substr(0, colon), static_cast<std::uint16_t>(port));
    if (!id.is_ok()) return fail_usage(id.status());
    std::printf("%s\n", id->to_string().c_str());
    return 0;
  }
  const int modes = (threads > 0) + (procs > 0) + !unique_id.empty();
  if (modes != 1) return fail_usage(invalid_argument("choose one way to form the group: --threads N, --procs N, or --unique-id ID --rank R --nranks N"));
  if (threads > 0) return run_threads(threads, config, copt);
  if (procs > 0) return run_processes(procs, config, copt);
  if (rank < 0 || nranks < 1 || rank >= nranks) return fail_usage(invalid_argument("--unique-id needs --rank R and --nranks N with 0 <= R < N"));
  auto id = transport::UniqueId::parse(unique_id);
  if (!id.is_ok()) return fail_usage(id.status());
  return run_member(*id, rank, nranks, config, copt);
}
