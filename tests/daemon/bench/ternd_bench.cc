// tern-ternd-bench: ternd's data path, measured.
//
//   tern-ternd-bench latency [--iters 20000] [--codec fp32|terngrad|...] [--poll-us 0]
//       An in-process ternd and two trainers (two libtern connections, one thread each) on one
//       node run 4-byte allreduces back to back; prints the median, p90 and p99 submit->complete
//       time of trainer 0, next to the median round trip of 4 bytes over a plain Unix socket pair
//       measured in the same run (the cost a socket round trip per operation would add).
//
//   tern-ternd-bench trainer --socket S --id ID --rank R --nranks N --local L [--bytes 64M]
//                            [--iters 5] [--warmup 1] [--codec terngrad]
//       One trainer of a group through an external ternd (e.g. one ternd per emulated node):
//       times tern_allreduce_sync of a `bytes` fp32 buffer and prints median seconds and algbw.
//   tern-ternd-bench unique-id --socket S     prints a fresh unique id from that ternd
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tern/daemon/daemon.h"
#include "tern/kernels/codec.h"
#include "tern/tern.h"

namespace {

using Clock = std::chrono::steady_clock;

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}

std::size_t parse_bytes(const std::string& s) {
  std::size_t mul = 1;
  std::string n = s;
  if (!n.empty() && (n.back() == 'K' || n.back() == 'M' || n.back() == 'G')) {
    mul = n.back() == 'K' ? 1024 : n.back() == 'M' ? 1024 * 1024 : std::size_t{1} << 30;
    n.pop_back();
  }
  return std::stoul(n) * mul;
}

tern_codec_t codec_of(const std::string& name) {
  auto c = tern::kernels::parse_codec(name);
  if (!c) {
    std::fprintf(stderr, "unknown codec %s\n", name.c_str());
    std::exit(2);
  }
  return static_cast<tern_codec_t>(*c);
}

void check(tern_status_t s, const char* what) {
  if (s != TERN_OK) {
    std::fprintf(stderr, "%s: %s: %s\n", what, tern_status_name(s), tern_last_error());
    std::exit(1);
  }
}

double socket_round_trip_median(int iters) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return -1;
  std::thread echo([&] {
    char b[4];
    for (int i = 0; i < iters; ++i) {
      if (::read(sv[1], b, 4) != 4 || ::write(sv[1], b, 4) != 4) break;
    }
  });
  std::vector<double> t;
  char b[4] = {1, 2, 3, 4};
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    if (::write(sv[0], b, 4) != 4 || ::read(sv[0], b, 4) != 4) break;
    t.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  echo.join();
  ::close(sv[0]);
  ::close(sv[1]);
  return pct(t, 0.5);
}

int latency(int argc, char** argv) {
  const int iters = std::stoi(arg(argc, argv, "--iters", "20000"));
  const tern_codec_t codec = codec_of(arg(argc, argv, "--codec", "terngrad"));
  char dir[] = "/tmp/tern-ternd-bench-XXXXXX";
  if (!::mkdtemp(dir)) return 1;
  tern::daemon::DaemonConfig config;
  config.socket_path = std::string(dir) + "/ternd.sock";
  config.advertise_host = "127.0.0.1";
  config.log_level = "warn";
  config.poll_us = static_cast<std::uint32_t>(std::stoul(arg(argc, argv, "--poll-us", "0")));
  auto daemon = tern::daemon::Daemon::create(config);
  if (!daemon) {
    std::fprintf(stderr, "%s\n", daemon.status().to_string().c_str());
    return 1;
  }
  std::thread server([&] { (void)(*daemon)->run(); });
  tern_client_t* c[2];
  for (auto& x : c) check(tern_connect(config.socket_path.c_str(), &x), "connect");
  tern_unique_id_t id;
  check(tern_get_unique_id(c[0], &id), "unique id");
  std::vector<double> samples[2];
  std::thread trainers[2];
  for (int r = 0; r < 2; ++r) {
    trainers[r] = std::thread([&, r] {
      tern_group_config_t gc{sizeof gc, r, 2, 2, 10000, 0};
      tern_group_t* g;
      check(tern_group_join(c[r], &id, &gc, &g), "join");
      void* buf;
      check(tern_alloc(c[r], 64, &buf), "alloc");
      tern_allreduce_args_t a;
      tern_allreduce_args_init(&a);
      a.buffer = buf;
      a.count = 1;
      a.op = TERN_SUM;
      a.scatter_codec = a.gather_codec = codec;
      for (int i = 0; i < iters + 100; ++i) {
        *static_cast<float*>(buf) = 1.0f;
        const auto t0 = Clock::now();
        check(tern_allreduce_sync(g, &a), "allreduce");
        if (i >= 100) samples[r].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      tern_group_destroy(g);
    });
  }
  for (auto& t : trainers) t.join();
  const double sock = socket_round_trip_median(iters);
  std::printf("# ternd submit->complete, 4-byte allreduce (%s), 2 local trainers, %d iterations\n",
              tern::kernels::codec_name(static_cast<tern::kernels::Codec>(codec)).data(), iters);
  std::printf("%-28s %10s %10s %10s\n", "", "median_us", "p90_us", "p99_us");
  std::printf("%-28s %10.2f %10.2f %10.2f\n", "ternd allreduce (rank 0)", pct(samples[0], 0.5), pct(samples[0], 0.9),
              pct(samples[0], 0.99));
  std::printf("%-28s %10.2f %10.2f %10.2f\n", "ternd allreduce (rank 1)", pct(samples[1], 0.5), pct(samples[1], 0.9),
              pct(samples[1], 0.99));
  std::printf("%-28s %10.2f\n", "unix socket round trip", sock);
  for (auto& x : c) tern_disconnect(x);
  (*daemon)->stop("benchmark done");
  server.join();
  daemon->reset();
  ::rmdir(dir);
  return 0;
}

int trainer(int argc, char** argv) {
  const std::string socket = arg(argc, argv, "--socket", "/run/tern/ternd.sock");
  tern_unique_id_t id{};
  std::snprintf(id.text, sizeof id.text, "%s", arg(argc, argv, "--id", "").c_str());
  const int rank = std::stoi(arg(argc, argv, "--rank", "0"));
  const int nranks = std::stoi(arg(argc, argv, "--nranks", "1"));
  const int local = std::stoi(arg(argc, argv, "--local", "1"));
  const std::size_t bytes = parse_bytes(arg(argc, argv, "--bytes", "64M"));
  const int iters = std::stoi(arg(argc, argv, "--iters", "5"));
  const int warmup = std::stoi(arg(argc, argv, "--warmup", "1"));
  const tern_codec_t codec = codec_of(arg(argc, argv, "--codec", "terngrad"));
  tern_client_t* c;
  check(tern_connect(socket.c_str(), &c), "connect");
  tern_group_config_t gc{sizeof gc, rank, nranks, local, 60000, 0};
  tern_group_t* g;
  check(tern_group_join(c, &id, &gc, &g), "join");
  void* buf;
  check(tern_alloc(c, bytes, &buf), "alloc");
  const std::size_t count = bytes / 4;
  auto* f = static_cast<float*>(buf);
  tern_allreduce_args_t a;
  tern_allreduce_args_init(&a);
  a.buffer = buf;
  a.count = count;
  a.scatter_codec = a.gather_codec = codec;
  a.timeout_ms = 120000;
  a.op = arg(argc, argv, "--op", "sum") == "mean" ? TERN_MEAN : TERN_SUM;  // tern-bench's default is sum
  // Filled once: refilling 64 MiB per iteration on every node would skew when the nodes enter each
  // allreduce, and that wait would be timed too (the mean keeps the values bounded in place).
  for (std::size_t j = 0; j < count; ++j)
    f[j] = static_cast<float>((j * 2654435761u + static_cast<std::size_t>(rank)) % 1000) / 500.0f - 1.0f;
  std::vector<double> t;
  for (int i = 0; i < warmup + iters; ++i) {
    const auto t0 = Clock::now();
    check(tern_allreduce_sync(g, &a), "allreduce");
    if (i >= warmup) t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double med = pct(t, 0.5);
  std::printf("rank %d: %zu bytes %s: median %.4f s, algbw %.3f GB/s (%d iterations)\n", rank, bytes,
              tern::kernels::codec_name(static_cast<tern::kernels::Codec>(codec)).data(), med,
              static_cast<double>(bytes) / med / 1e9, iters);
  tern_group_destroy(g);
  tern_disconnect(c);
  return 0;
}

int unique_id(int argc, char** argv) {
  tern_client_t* c;
  check(tern_connect(arg(argc, argv, "--socket", "/run/tern/ternd.sock").c_str(), &c), "connect");
  tern_unique_id_t id;
  check(tern_get_unique_id(c, &id), "unique id");
  std::printf("%s\n", id.text);
  tern_disconnect(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "latency") return latency(argc, argv);
  if (mode == "trainer") return trainer(argc, argv);
  if (mode == "unique-id") return unique_id(argc, argv);
  std::fprintf(stderr, "usage: %s latency|trainer|unique-id [options] (see the source's header)\n", argv[0]);
  return 2;
}
