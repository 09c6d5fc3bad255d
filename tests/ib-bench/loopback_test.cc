// bw and lat over UCX on loopback, server and client as two threads of this process (each with
// its own UCX context and worker, as two processes would have), small sizes, few iterations.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "perf/control.h"
#include "perf/session.h"
#include "report/json_report.h"

namespace tern::ibbench {
namespace {

class IbBenchLoopback : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { setenv("UCX_TLS", "tcp,self", 1); }  // before any UCX context

  // A free port: bind to 0 and release it (the server binds it again at once).
  static std::uint16_t free_port() {
    auto l = ControlListener::listen("127.0.0.1", 0);
    EXPECT_TRUE(l.is_ok());
    return l->port();
  }

  SessionConfig config(TestKind test, bool server, std::uint16_t port) {
    SessionConfig c;
    c.perf.test = test;
    c.perf.sizes = {8, 4096, 300000};  // eager and rendezvous, one not a power of two
    c.perf.iterations = 200;
    c.perf.warmup = 20;
    c.perf.window = test == TestKind::kBw ? 16 : 1;
    c.server = server;
    c.host = "127.0.0.1";
    c.bind_address = "127.0.0.1";
    c.port = port;
    c.timeout_s = 30;
    return c;
  }

  // Runs both sides; returns {server, client}.
  std::pair<Result<SessionReport>, Result<SessionReport>> run(const SessionConfig& server,
                                                              const SessionConfig& client) {
    Result<SessionReport> s = internal_error("not run");
    std::thread t([&] { s = run_session(server, {}); });
    Result<SessionReport> c = run_session(client, {});
    t.join();
    return {std::move(s), std::move(c)};
  }
};

TEST_F(IbBenchLoopback, BandwidthUnidirectional) {
  const std::uint16_t port = free_port();
  auto [s, c] = run(config(TestKind::kBw, true, port), config(TestKind::kBw, false, port));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_EQ(c->bw.size(), 3u);
  ASSERT_EQ(s->bw.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c->bw[i].bytes, c->perf.sizes[i]);
    EXPECT_EQ(c->bw[i].iterations, 200u);
    EXPECT_GT(c->bw[i].bw_avg_mbs, 0.0);
    EXPECT_GE(c->bw[i].bw_peak_mbs, c->bw[i].bw_avg_mbs);
    EXPECT_GT(c->bw[i].msg_rate_mpps, 0.0);
    // Both sides print the same row.
    EXPECT_DOUBLE_EQ(s->bw[i].bw_avg_mbs, c->bw[i].bw_avg_mbs);
  }
  EXPECT_EQ(c->role, "client");
  EXPECT_EQ(s->role, "server");
  EXPECT_FALSE(c->lanes.empty());
  EXPECT_NE(c->lanes[0].find("tcp/"), std::string::npos) << c->lanes[0];
  const nlohmann::json j = to_json(*c);
  EXPECT_EQ(j["command"], "bw");
  EXPECT_EQ(j["results"].size(), 3u);
}

TEST_F(IbBenchLoopback, BandwidthBidirectionalByDuration) {
  const std::uint16_t port = free_port();
  SessionConfig server = config(TestKind::kBw, true, port), client = config(TestKind::kBw, false, port);
  for (SessionConfig* c : {&server, &client}) {
    c->perf.bidirectional = true;
    c->perf.iterations = 0;
    c->perf.duration_s = 0.2;
    c->perf.sizes = {65536};
  }
  auto [s, c] = run(server, client);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_EQ(c->bw.size(), 1u);
  EXPECT_GT(c->bw[0].iterations, 0u);  // both directions counted
  EXPECT_GT(c->bw[0].bw_avg_mbs, 0.0);
}

TEST_F(IbBenchLoopback, Latency) {
  const std::uint16_t port = free_port();
  auto [s, c] = run(config(TestKind::kLat, true, port), config(TestKind::kLat, false, port));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_EQ(c->lat.size(), 3u);
  for (const LatRow& r : c->lat) {
    EXPECT_EQ(r.iterations, 200u);
    EXPECT_GT(r.t_min, 0.0);
    EXPECT_LE(r.t_min, r.t_typical);
    EXPECT_LE(r.t_typical, r.p99);
    EXPECT_LE(r.p99, r.p999);
    EXPECT_LE(r.p999, r.t_max);
  }
  EXPECT_DOUBLE_EQ(s->lat[1].t_typical, c->lat[1].t_typical);
}

// Rendezvous-sized ping-pong over both TCP lanes (tcp/lo + tcp/eth0): declaring host memory
// types to UCX 1.13 made this stall; it must finish well inside the deadline.
TEST_F(IbBenchLoopback, LatencyLargeMessages) {
  const std::uint16_t port = free_port();
  SessionConfig server = config(TestKind::kLat, true, port), client = config(TestKind::kLat, false, port);
  for (SessionConfig* c : {&server, &client}) {
    c->perf.sizes = {65536, 1 << 20};
    c->perf.iterations = 300;
    c->timeout_s = 20;
  }
  auto [s, c] = run(server, client);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_EQ(c->lat.size(), 2u);
  EXPECT_EQ(c->lat[1].iterations, 300u);
}

TEST_F(IbBenchLoopback, DifferentOptionsAreRefusedNamingTheField) {
  const std::uint16_t port = free_port();
  SessionConfig server = config(TestKind::kBw, true, port), client = config(TestKind::kBw, false, port);
  client.perf.window = 32;
  auto [s, c] = run(server, client);
  ASSERT_FALSE(c.is_ok());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(c.status().message().find("window: 16 here, 32 on the peer"), std::string::npos) << c.status().to_string();
  EXPECT_NE(s.status().message().find("differ"), std::string::npos) << s.status().to_string();
}

TEST_F(IbBenchLoopback, ClientWithoutServerTimesOut) {
  SessionConfig client = config(TestKind::kLat, false, free_port());
  client.timeout_s = 0.5;
  const auto start = Clock::now();
  auto c = run_session(client, {});
  EXPECT_EQ(c.status().code(), StatusCode::kTimeout) << c.status().to_string();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// Sends raw bytes to `port` the way a non-ib-bench client might.
void send_raw(std::uint16_t port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

TEST_F(IbBenchLoopback, ControlChannelRejectsBadFrames) {
  auto listener = ControlListener::listen("127.0.0.1", 0);
  ASSERT_TRUE(listener.is_ok());
  // A header announcing 16 MiB (an HTTP client, a port scanner): refused without allocating it.
  std::thread t1([&] { send_raw(listener->port(), std::string("\x01\x00\x00\x00", 4)); });
  auto a = listener->accept(deadline_in(5));
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->receive(deadline_in(5)).status().code(), StatusCode::kCorruptData);
  t1.join();
  // A well-framed message that is not JSON.
  std::thread t2([&] { send_raw(listener->port(), std::string("\x00\x00\x00\x03", 4) + "abc"); });
  auto b = listener->accept(deadline_in(5));
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->receive(deadline_in(5)).status().code(), StatusCode::kCorruptData);
  t2.join();
  // The peer closed: reported as such, not a hang.
  std::thread t3([&] { send_raw(listener->port(), ""); });
  auto c = listener->accept(deadline_in(5));
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->receive(deadline_in(5)).status().code(), StatusCode::kPeerFailure);
  t3.join();
  // Nobody sends anything: the deadline ends the wait.
  auto d = ControlChannel::connect("127.0.0.1", listener->port(), deadline_in(5));
  ASSERT_TRUE(d.is_ok());
  auto e = listener->accept(deadline_in(5));
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->receive(deadline_in(0.2)).status().code(), StatusCode::kTimeout);
}

}  // namespace
}  // namespace tern::ibbench
