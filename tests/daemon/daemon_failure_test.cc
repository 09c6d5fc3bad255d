// ternd under failure: a trainer that dies, hostile frames, a daemon that stops, another uid.
#include <gtest/gtest.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <future>
#include <thread>
#include <utility>

#include "daemon_test_util.h"
#include "tern/daemon/protocol.h"
#include "tern/daemon/ring.h"
#include "tern/tern.h"

namespace tern::daemon::test {
namespace {

using namespace std::chrono_literals;

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

std::string new_id(const std::string& socket) {
  tern_client_t* c = nullptr;
  if (tern_connect(socket.c_str(), &c) != TERN_OK) return {};
  tern_unique_id_t id{};
  if (tern_get_unique_id(c, &id) != TERN_OK) id.text[0] = 0;
  tern_disconnect(c);
  return id.text;
}

// new_id() as libtern's type, for tern_group_join.
tern_unique_id_t new_c_id(const std::string& socket) {
  tern_unique_id_t id{};
  std::snprintf(id.text, sizeof id.text, "%s", new_id(socket).c_str());
  return id;
}

std::vector<std::string> args(const std::string& socket, const std::string& id, int rank, int nranks, int local,
                              int iters) {
  return {"--socket", socket, "--id", id, "--rank", std::to_string(rank), "--nranks", std::to_string(nranks),
          "--local", std::to_string(local), "--iters", std::to_string(iters), "--count", "4096"};
}

// A raw connection speaking (or abusing) the control protocol.
int raw_connect(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the daemon closes the connection within the deadline.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;  // EOF or reset: disconnected
  }
}

TEST(DaemonFailure, TrainerDyingFailsTheOthersNamingIt) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(test_config(sock));
  const std::string id = new_id(sock);
  auto a0 = args(sock, id, 0, 2, 2, 3);
  auto a1 = args(sock, id, 1, 2, 2, 3);
  a1.insert(a1.end(), {"--exit-before", "2"});
  Trainer t0(a0, dir.path() + "/o0"), t1(a1, dir.path() + "/o1");
  EXPECT_EQ(t1.wait(30s), 3);
  EXPECT_EQ(t0.wait(30s), 1);
  const std::string out = t0.output();
  EXPECT_NE(out.find("error peer failure: allreduce 2"), std::string::npos) << out;
  EXPECT_NE(out.find("rank 1 on host " + host_name() + " left"), std::string::npos) << out;
  // The dead trainer's memory was released: no client remains with arenas.
  EXPECT_EQ(daemon->status_json().find("\"arena_bytes\":4"), std::string::npos);
}

TEST(DaemonFailure, TrainerDyingOnOneNodeFailsEveryNode) {
  TempDir dir;
  const std::string s0 = dir.path() + "/n0.sock", s1 = dir.path() + "/n1.sock";
  TestDaemon d0(test_config(s0)), d1(test_config(s1));
  const std::string id = new_id(s0);
  std::vector<std::unique_ptr<Trainer>> t;
  for (int r = 0; r < 4; ++r) {
    auto a = args(r < 2 ? s0 : s1, id, r, 4, 2, 3);
    if (r == 3) a.insert(a.end(), {"--exit-before", "2"});
    t.push_back(std::make_unique<Trainer>(a, dir.path() + "/o" + std::to_string(r)));
  }
  EXPECT_EQ(t[3]->wait(40s), 3);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(t[static_cast<std::size_t>(r)]->wait(40s), 1);
    const std::string out = t[static_cast<std::size_t>(r)]->output();
    EXPECT_NE(out.find("error peer failure: allreduce 2"), std::string::npos) << "rank " << r << ": " << out;
    EXPECT_NE(out.find("left"), std::string::npos) << "rank " << r << ": " << out;
  }
  EXPECT_NE(t[2]->output().find("rank 3 on host " + host_name() + " left"), std::string::npos) << t[2]->output();
}

TEST(DaemonFailure, MalformedFramesDisconnectOnlyThatClient) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(test_config(sock));
  // Garbage, a lying length, a request before hello, fds no frame announced.
  std::vector<std::vector<std::uint8_t>> attacks;
  attacks.push_back(std::vector<std::uint8_t>(32, 0xAB));
  {
    protocol::FrameHeader h{static_cast<std::uint16_t>(protocol::MessageType::kStatus), 1u << 30, 0};
    std::vector<std::uint8_t> f(protocol::kHeaderBytes);
    protocol::encode_header(h, f.data());
    attacks.push_back(f);
  }
  attacks.push_back(protocol::encode_request(protocol::GetUniqueId{}, 0));
  {
    protocol::Hello hello;
    hello.ring_capacity = 1000;  // not a power of two
    hello.ring_bytes = 1;
    attacks.push_back(protocol::encode_request(hello, 0));
  }
  // A well-behaved pair of trainers runs alongside.
  const std::string id = new_id(sock);
  Trainer t0(args(sock, id, 0, 2, 2, 5), dir.path() + "/o0"), t1(args(sock, id, 1, 2, 2, 5), dir.path() + "/o1");
  for (const auto& frame : attacks) {
    const int fd = raw_connect(sock);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
    EXPECT_TRUE(closed_by_peer(fd, 5s)) << "the daemon kept a hostile client connected";
    ::close(fd);
  }
  EXPECT_EQ(t0.wait(30s), 0) << t0.output().substr(0, 200);
  EXPECT_EQ(t1.wait(30s), 0) << t1.output().substr(0, 200);
  const std::string status = daemon->status_json();
  EXPECT_NE(status.find("\"protocol_errors\":4"), std::string::npos) << status;
}

// Sends `frame` with `fds` attached (SCM_RIGHTS).
bool send_with_fds(int sock, const std::vector<std::uint8_t>& frame, const std::vector<int>& fds) {
  iovec iov{const_cast<std::uint8_t*>(frame.data()), frame.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)] = {};
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
}

// A client that hands over a ring and then corrupts it (or never seals it) is disconnected.
TEST(DaemonFailure, HostileRingsAreRefused) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(test_config(sock));
  const std::uint32_t cap = 16;
  for (bool seal : {false, true}) {
    const int fd = ::memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(ring::ring_bytes(cap))), 0);
    if (seal) {
      ASSERT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    }
    void* base = ::mmap(nullptr, ring::ring_bytes(cap), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(base, MAP_FAILED);
    ASSERT_TRUE(ring::RingView::initialize(base, ring::ring_bytes(cap), cap).is_ok());
    const int doorbell = ::eventfd(0, EFD_CLOEXEC), completion = ::eventfd(0, EFD_CLOEXEC);
    const int conn = raw_connect(sock);
    ASSERT_GE(conn, 0);
    protocol::Hello hello{0, cap, ring::ring_bytes(cap), 1};
    ASSERT_TRUE(send_with_fds(conn, protocol::encode_request(hello, 3), {fd, doorbell, completion}));
    if (seal) {
      // The hello is accepted (a reply arrives); then the submission tail jumps far ahead.
      std::uint8_t header[protocol::kHeaderBytes];
      ASSERT_EQ(::recv(conn, header, sizeof header, MSG_WAITALL), static_cast<ssize_t>(sizeof header));
      static_cast<ring::Header*>(base)->sq_tail = 1000;
      const std::uint64_t one = 1;
      ASSERT_EQ(::write(doorbell, &one, sizeof one), 8);
    }
    EXPECT_TRUE(closed_by_peer(conn, std::chrono::seconds(5))) << (seal ? "corrupt ring" : "unsealed ring");
    for (int x : {conn, fd, doorbell, completion}) ::close(x);
    ::munmap(base, ring::ring_bytes(cap));
  }
  const std::string status = daemon->status_json();
  EXPECT_NE(status.find("not sealed against shrinking"), std::string::npos) << status;
  EXPECT_NE(status.find("entries ahead of the head"), std::string::npos) << status;
}

TEST(DaemonFailure, StopFailsPendingOpsAndClientsCanReconnect) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  auto daemon = std::make_unique<TestDaemon>(test_config(sock));
  const tern_unique_id_t id = new_c_id(sock);
  tern_client_t *c0 = nullptr, *c1 = nullptr;
  ASSERT_EQ(tern_connect(sock.c_str(), &c0), TERN_OK);
  ASSERT_EQ(tern_connect(sock.c_str(), &c1), TERN_OK);
  auto join = [&](tern_client_t* c, int rank) {
    tern_group_config_t cfg{sizeof(tern_group_config_t), rank, 2, 2, 10000, 0};
    tern_group_t* g = nullptr;
    EXPECT_EQ(tern_group_join(c, &id, &cfg, &g), TERN_OK) << tern_last_error();
    return g;
  };
  auto f1 = std::async(std::launch::async, join, c1, 1);
  tern_group_t* g0 = join(c0, 0);
  tern_group_t* g1 = f1.get();
  ASSERT_TRUE(g0 && g1);
  void* buf = nullptr;
  ASSERT_EQ(tern_alloc(c0, 4096, &buf), TERN_OK);
  tern_allreduce_args_t a;
  tern_allreduce_args_init(&a);
  a.buffer = buf;
  a.count = 16;
  tern_request_t* req = nullptr;
  ASSERT_EQ(tern_allreduce(g0, &a, &req), TERN_OK);  // rank 1 never submits: pending until the stop
  EXPECT_EQ(tern_test(req), TERN_IN_PROGRESS);
  daemon->stop("operator asked");
  EXPECT_EQ(tern_wait(req, 10000), TERN_UNAVAILABLE);
  EXPECT_NE(std::string(tern_request_error(req)).find("shutting down: operator asked"), std::string::npos)
      << tern_request_error(req);
  tern_request_free(req);
  void* p = nullptr;
  EXPECT_EQ(tern_alloc(c1, 4096, &p), TERN_UNAVAILABLE);
  EXPECT_NE(std::string(tern_last_error()).find("ternd"), std::string::npos) << tern_last_error();
  tern_group_destroy(g0);
  tern_group_destroy(g1);
  tern_disconnect(c0);
  tern_disconnect(c1);
  // A restarted ternd on the same path serves new connections.
  daemon = std::make_unique<TestDaemon>(test_config(sock));
  tern_client_t* c2 = nullptr;
  ASSERT_EQ(tern_connect(sock.c_str(), &c2), TERN_OK) << tern_last_error();
  tern_disconnect(c2);
}

TEST(DaemonFailure, StopWhileTheInterNodeGroupFormsEndsTheJoinAtOnce) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  auto daemon = std::make_unique<TestDaemon>(test_config(sock));
  const tern_unique_id_t id = new_c_id(sock);
  tern_client_t* c = nullptr;
  ASSERT_EQ(tern_connect(sock.c_str(), &c), TERN_OK);
  // Node 0 of 2: ternd forms the inter-node group and waits for node 1, which never comes.
  tern_group_config_t cfg{sizeof(tern_group_config_t), 0, 2, 1, 20000, 0};
  auto joined = std::async(std::launch::async, [&] {
    tern_group_t* g = nullptr;
    const tern_status_t s = tern_group_join(c, &id, &cfg, &g);
    if (g) tern_group_destroy(g);
    return std::make_pair(s, std::string(tern_last_error()));
  });
  std::this_thread::sleep_for(500ms);  // the daemon's group worker is inside the bootstrap's join
  const auto start = std::chrono::steady_clock::now();
  daemon->stop("operator asked");
  const auto stop_took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(joined.wait_for(5s), std::future_status::ready) << "the join waited for its 20 s timeout";
  const auto [status, error] = joined.get();
  EXPECT_EQ(status, TERN_UNAVAILABLE) << error;
  // The stop closes the connection before the group's worker can reply: libtern says so.
  EXPECT_NE(error.find("ternd closed the connection"), std::string::npos) << error;
  EXPECT_LT(stop_took, 5s) << "stop waited for the formation deadline";
  tern_disconnect(c);
}

TEST(DaemonFailure, SecondDaemonOnALiveSocketIsRefused) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(test_config(sock));
  auto second = Daemon::create(test_config(sock));
  ASSERT_FALSE(second.is_ok());
  EXPECT_NE(second.status().message().find("another ternd"), std::string::npos) << second.status().to_string();
}

TEST(DaemonFailure, AnotherUidCannotJoinAGroupOrConnectWithoutPermission) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a trainer as another uid";
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 01777), 0);  // the setuid'ed trainer writes its output here
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(test_config(sock));
  struct stat st{};
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  const std::string id = new_id(sock);
  // Root's rank 0 of a 2-rank group on this node, waiting for rank 1.
  Trainer root(args(sock, id, 0, 2, 2, 1), dir.path() + "/root");
  // nobody (65534) cannot even connect: the socket is 0660 root:root.
  auto nobody_args = args(sock, id, 1, 2, 2, 1);
  nobody_args.insert(nobody_args.end(), {"--setuid", "65534", "--timeout-ms", "3000"});
  {
    Trainer nobody(nobody_args, dir.path() + "/nobody1");
    EXPECT_EQ(nobody.wait(20s), 1);
    EXPECT_NE(nobody.output().find("error unavailable: connect"), std::string::npos) << nobody.output();
  }
  // With the socket opened up, it connects but may not join root's group.
  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
  {
    Trainer nobody(nobody_args, dir.path() + "/nobody2");
    EXPECT_EQ(nobody.wait(20s), 1);
    const std::string out = nobody.output();
    EXPECT_NE(out.find("error invalid argument: join"), std::string::npos) << out;
    EXPECT_NE(out.find("belongs to uid 0; uid 65534 may not join it"), std::string::npos) << out;
  }
  daemon.stop();
  EXPECT_EQ(root.wait(20s), 1);
}

}  // namespace
}  // namespace tern::daemon::test
