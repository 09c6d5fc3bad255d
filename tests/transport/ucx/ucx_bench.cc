// Loopback numbers for UcxTransport between two processes (rank 0 here, rank 1 forked): 8-byte
// ping-pong latency and one-way bandwidth of 1 MiB (window of 16) and 64 MiB (window of 2)
// messages, over UCX's default choice and over TCP. Each figure is the median of --runs runs.
//
//   ucx_transport_bench [--runs N]
//
// Compare with: ucx_perftest -t tag_bw -s 1048576 (server) / ucx_perftest localhost ... (client).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "transport/ucx/ucx_test_util.h"

using namespace tern;
using namespace tern::transport;
using namespace tern::transport::ucx_test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr int kPingPongs = 20000;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void spin_until(Transport& t, const std::function<bool()>& done) {
  while (!done()) (void)t.progress(std::chrono::milliseconds(0));
}

// Rank 0 sends `count` messages of `size` bytes, `window` at a time; rank 1 receives them and
// answers with one 8-byte ack. Returns seconds on rank 0 (0 on rank 1).
double stream(Transport& t, std::size_t size, int count, int window) {
  std::vector<std::byte> buffer(size, std::byte{1});
  std::uint64_t ack = 0;
  int posted = 0, done = 0;
  const int peer = 1 - t.rank();
  const auto start = Clock::now();
  auto post = [&] {
    while (posted < count && posted - done < window) {
      const Tag tag = static_cast<Tag>(posted++);
      auto fn = [&](const Completion& c) {
        if (!c.status.is_ok()) std::fprintf(stderr, "%s\n", c.status.to_string().c_str());
        ++done;
      };
      const Status s = t.rank() == 0 ? t.send(peer, tag, buffer.data(), size, MemoryKind::kHost, fn)
                                     : t.recv(peer, tag, buffer.data(), size, MemoryKind::kHost, fn);
      if (!s.is_ok()) std::fprintf(stderr, "%s\n", s.to_string().c_str());
    }
  };
  post();
  while (done < count) {
    (void)t.progress(std::chrono::milliseconds(0));
    post();
  }
  bool acked = false;
  if (t.rank() == 0) {
    (void)t.recv(peer, kUcxMaxTag, &ack, 8, MemoryKind::kHost, [&](const Completion&) { acked = true; });
  } else {
    (void)t.send(peer, kUcxMaxTag, &ack, 8, MemoryKind::kHost, [&](const Completion&) { acked = true; });
  }
  spin_until(t, [&] { return acked; });
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Rank 0: half the median round trip in microseconds ("typical" one-way latency, as
// ucx_perftest reports it; the mean is at the mercy of the scheduler on a loaded machine).
double ping_pong(Transport& t, int rounds) {
  std::uint64_t out = 0, in = 0;
  const int peer = 1 - t.rank();
  std::vector<double> round_trips;
  round_trips.reserve(static_cast<std::size_t>(rounds));
  for (int i = 0; i < rounds; ++i) {
    bool got = false, sent = false;
    auto recv_fn = [&](const Completion&) { got = true; };
    auto send_fn = [&](const Completion&) { sent = true; };
    const auto start = Clock::now();
    if (t.rank() == 0) {
      (void)t.send(peer, 1, &out, 8, MemoryKind::kHost, send_fn);
      (void)t.recv(peer, 2, &in, 8, MemoryKind::kHost, recv_fn);
    } else {
      (void)t.recv(peer, 1, &in, 8, MemoryKind::kHost, recv_fn);
      spin_until(t, [&] { return got; });
      (void)t.send(peer, 2, &out, 8, MemoryKind::kHost, send_fn);
    }
    spin_until(t, [&] { return got && sent; });
    round_trips.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return median(round_trips) / 2;
}

struct Numbers {
  std::vector<double> latency_us, bw_1mib, bw_64mib;
};

void run_rank(Transport& t, int runs, Numbers* out) {
  (void)ping_pong(t, 1000);  // warm-up: wire-up, registration caches
  (void)stream(t, 64 * kMiB, 2, 2);
  for (int r = 0; r < runs; ++r) {
    const double lat = ping_pong(t, kPingPongs);
    const double s1 = stream(t, kMiB, 1000, 16);
    const double s64 = stream(t, 64 * kMiB, 16, 2);
    if (out != nullptr) {
      out->latency_us.push_back(lat);
      out->bw_1mib.push_back(1000.0 * kMiB / s1 / 1e9);
      out->bw_64mib.push_back(16.0 * 64 * kMiB / s64 / 1e9);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::max(1, std::atoi(argv[i + 1]));
  }
  for (Fabric fabric : {Fabric::kDefault, Fabric::kTcp}) {
    const UcxOptions options = options_for(fabric);
    std::vector<Child> children;
    children.push_back(fork_child([&](Channel& parent) {
      auto local = UcxLocalWorker::create(options);
      if (!local) return 2;
      auto addresses = exchange_as_child(parent, local->address());
      if (!addresses) return 3;
      auto t = UcxTransport::create(std::move(*local), 1, std::move(*addresses));
      if (!t) return 4;
      run_rank(**t, runs, nullptr);
      return 0;
    }));
    auto local = UcxLocalWorker::create(options);
    if (!local) {
      std::fprintf(stderr, "%s\n", local.status().to_string().c_str());
      return 1;
    }
    auto addresses = exchange_as_parent(children, local->address());
    auto t = UcxTransport::create(std::move(*local), 0, std::move(*addresses));
    if (!t) {
      std::fprintf(stderr, "%s\n", t.status().to_string().c_str());
      return 1;
    }
    Numbers n;
    run_rank(**t, runs, &n);
    std::printf("%-8s %-32s latency %6.2f us (typical)   bw 1 MiB %6.2f GB/s   bw 64 MiB %6.2f GB/s   (median of %d)\n",
                fabric_name(fabric).c_str(), (*t)->capabilities().description.c_str(), median(n.latency_us),
                median(n.bw_1mib), median(n.bw_64mib), runs);
    t->reset();
    if (wait_child(children[0].pid, std::chrono::seconds(60)) != 0) std::fprintf(stderr, "child failed\n");
  }
  return 0;
}
