// Group formation: sizes 1..8, rank requests, deadlines, authentication and hostile clients.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap_test_util.h"
#include "wire.h"

namespace tern::transport {
namespace {

using namespace tern::transport::testing;
namespace wire = bootstrap_wire;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

class BootstrapFormationSizes : public ::testing::TestWithParam<int> {};

TEST_P(BootstrapFormationSizes, FormsAndAllgathersThePayloads) {
  const int n = GetParam();
  const BootstrapOptions options = fast_options();
  Group g = form_group(n, options);
  ASSERT_EQ(static_cast<int>(g.members.size()), n);
  EXPECT_TRUE(g.server->wait_formed(1s).is_ok());
  EXPECT_EQ(g.server->joined(), n);
  std::set<std::string> payloads;
  for (int r = 0; r < n; ++r) {
    const Bootstrap& m = *g.members[static_cast<std::size_t>(r)];
    EXPECT_EQ(m.rank(), r);
    EXPECT_EQ(m.size(), n);
    EXPECT_EQ(m.root_rank(), kRendezvousRoot);
    ASSERT_EQ(static_cast<int>(m.peers().size()), n);
    const std::string host = m.peers()[static_cast<std::size_t>(r)].host;
    const auto& payload = m.peers()[static_cast<std::size_t>(r)].payload;
    payloads.insert(std::string(payload.begin(), payload.end()));
    // Member j announced host "hostJ" and payload "payload-J": the table pairs them right.
    EXPECT_EQ(host.substr(4), std::string(payload.begin() + 8, payload.end()));
    for (int other = 0; other < n; ++other) {
      EXPECT_EQ(g.members[static_cast<std::size_t>(other)]->peers()[static_cast<std::size_t>(r)].payload, payload);
      EXPECT_EQ(g.members[static_cast<std::size_t>(other)]->peers()[static_cast<std::size_t>(r)].host, host);
    }
    EXPECT_EQ(m.peer_name(r), "rank " + std::to_string(r) + " (host " + host + ")");
  }
  EXPECT_EQ(static_cast<int>(payloads.size()), n);
  for (const auto& m : g.members) EXPECT_TRUE(m->failed_peers().empty());
}

INSTANTIATE_TEST_SUITE_P(OneToEight, BootstrapFormationSizes, ::testing::Range(1, 9));

TEST(BootstrapFormation, RootHostedByRankZero) {
  const BootstrapOptions options = fast_options();
  auto server = BootstrapServer::start(local_id(), 3, options);
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  const UniqueId id = (*server)->id();
  ASSERT_TRUE(id.complete());
  std::optional<Result<std::unique_ptr<Bootstrap>>> root;
  std::thread t([&] {
    JoinOptions jo;
    jo.rank = 0;
    jo.host_name = "root-host";
    root.emplace(Bootstrap::join(std::move(*server), std::move(jo), options));
  });
  auto others = join_concurrently(id, std::vector<JoinOptions>(2), options);
  t.join();
  ASSERT_TRUE(root->is_ok()) << root->status().to_string();
  EXPECT_EQ((**root)->rank(), 0);
  EXPECT_EQ((**root)->root_rank(), 0);
  for (auto& o : others) {
    ASSERT_TRUE(o.is_ok()) << o.status().to_string();
    EXPECT_EQ((*o)->root_rank(), 0);
    EXPECT_NE((*o)->rank(), 0);
    EXPECT_EQ((*o)->peers()[0].host, "root-host");
  }
}

TEST(BootstrapFormation, RequestedRanksAreHonouredOthersFilledInJoinOrder) {
  const BootstrapOptions options = fast_options();
  auto server = BootstrapServer::start(local_id(), 5, options);
  ASSERT_TRUE(server.is_ok());
  const UniqueId id = (*server)->id();
  std::vector<std::optional<Result<std::unique_ptr<Bootstrap>>>> results(5);
  std::vector<std::thread> threads;
  // Join one at a time (waiting until the root counted each), so that the join order is known.
  const std::vector<int> requests = {3, kAnyRank, 1, kAnyRank, kAnyRank};
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&, i] {
      JoinOptions jo;
      jo.rank = requests[static_cast<std::size_t>(i)];
      jo.host_name = "joiner" + std::to_string(i);
      results[static_cast<std::size_t>(i)].emplace(Bootstrap::join(id, std::move(jo), options));
    });
    const auto deadline = Clock::now() + 10s;
    while ((*server)->joined() < std::min(i + 1, 4) && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
  }
  for (auto& t : threads) t.join();
  std::vector<int> ranks;
  for (auto& r : results) {
    ASSERT_TRUE(r->is_ok()) << r->status().to_string();
    ranks.push_back((**r)->rank());
  }
  EXPECT_EQ(ranks, (std::vector<int>{3, 0, 1, 2, 4}));
}

TEST(BootstrapFormation, RankConflictsAreReportedToThatJoinerOnly) {
  const BootstrapOptions options = fast_options();
  auto server = BootstrapServer::start(local_id(), 2, options);
  ASSERT_TRUE(server.is_ok());
  const UniqueId id = (*server)->id();
  std::optional<Result<std::unique_ptr<Bootstrap>>> first;
  std::thread t([&] {
    JoinOptions jo;
    jo.rank = 1;
    jo.host_name = "first";
    first.emplace(Bootstrap::join(id, std::move(jo), options));
  });
  while ((*server)->joined() < 1) std::this_thread::sleep_for(2ms);

  JoinOptions dup;
  dup.rank = 1;
  auto duplicate = Bootstrap::join(id, dup, options);
  ASSERT_FALSE(duplicate.is_ok());
  EXPECT_EQ(duplicate.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(duplicate.status().message(), "requested rank 1 is already taken by host first (joined from 127.0.0.1:"))
      << duplicate.status().message();

  JoinOptions out_of_range;
  out_of_range.rank = 7;
  auto far = Bootstrap::join(id, out_of_range, options);
  ASSERT_FALSE(far.is_ok());
  EXPECT_TRUE(contains(far.status().message(), "requested rank 7 is out of range for a group of 2 ranks"))
      << far.status().message();

  JoinOptions zero;
  zero.rank = 0;
  auto second = Bootstrap::join(id, zero, options);
  t.join();
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  ASSERT_TRUE(first->is_ok()) << first->status().to_string();
  EXPECT_EQ((*second)->rank(), 0);
  EXPECT_EQ((**first)->rank(), 1);
  EXPECT_EQ((*server)->rejections().size(), 2u);

  // After formation the root refuses further joins (with the right secret) and says why.
  auto late = Bootstrap::join(id, JoinOptions{}, options);
  ASSERT_FALSE(late.is_ok());
  EXPECT_TRUE(contains(late.status().message(), "has already formed")) << late.status().message();
}

TEST(BootstrapFormation, MembersMayStartBeforeTheRoot) {
  // Find a free port, then start the members first: they retry until the root listens.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(probe);
  auto id = UniqueId::generate("127.0.0.1", ntohs(addr.sin_port));
  ASSERT_TRUE(id.is_ok());

  const BootstrapOptions options = fast_options();
  std::vector<std::optional<Result<std::unique_ptr<Bootstrap>>>> results(3);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 3; ++i)
    threads.emplace_back([&, i] { results[i].emplace(Bootstrap::join(*id, JoinOptions{}, options)); });
  std::this_thread::sleep_for(300ms);
  auto server = BootstrapServer::start(*id, 3, options);
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  for (auto& t : threads) t.join();
  for (auto& r : results) EXPECT_TRUE(r->is_ok()) << r->status().to_string();
}

TEST(BootstrapFormation, AMissingRankTimesOutOnEveryoneAndIsNamed) {
  BootstrapOptions options = fast_options();
  options.formation_timeout = 1500ms;
  auto server = BootstrapServer::start(local_id(), 4, options);
  ASSERT_TRUE(server.is_ok());
  std::vector<JoinOptions> joins(3);
  joins[0].rank = 0;
  joins[1].rank = 1;
  joins[2].rank = 3;
  // The members started later and wait longer: the root's verdict reaches every one of them.
  BootstrapOptions member_options = options;
  member_options.formation_timeout = 1500ms + kSlack;
  const auto start = Clock::now();
  auto results = join_concurrently((*server)->id(), std::move(joins), member_options);
  EXPECT_LT(Clock::now() - start, 1500ms + kSlack);
  for (auto& r : results) {
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
    EXPECT_TRUE(contains(r.status().message(), "group formation timed out after 1.5 s: 3 of 4 ranks joined (missing: rank 2)"))
        << r.status().message();
  }
  const Status root = (*server)->wait_formed(1s);
  EXPECT_EQ(root.code(), StatusCode::kTimeout);
  EXPECT_EQ(root.message(), "group formation timed out after 1.5 s: 3 of 4 ranks joined (missing: rank 2)");
}

TEST(BootstrapFormation, MissingAnyRankJoinersAreCounted) {
  BootstrapOptions options = fast_options();
  options.formation_timeout = 1s;
  auto server = BootstrapServer::start(local_id(), 6, options);
  ASSERT_TRUE(server.is_ok());
  std::vector<JoinOptions> joins(2);
  joins[0].rank = 4;
  BootstrapOptions member_options = options;
  member_options.formation_timeout = 1s + kSlack;
  auto results = join_concurrently((*server)->id(), std::move(joins), member_options);
  for (auto& r : results) {
    ASSERT_FALSE(r.is_ok());
    EXPECT_TRUE(contains(r.status().message(), "2 of 6 ranks joined (missing: ranks 1-3, 5)")) << r.status().message();
  }
}

TEST(BootstrapFormation, AMemberWhoseOwnDeadlinePassesFirstSaysWhatIsMissing) {
  auto server = BootstrapServer::start(local_id(), 3, fast_options());  // the root waits 20 s
  ASSERT_TRUE(server.is_ok());
  BootstrapOptions impatient = fast_options();
  impatient.formation_timeout = 500ms;
  auto r = Bootstrap::join((*server)->id(), JoinOptions{}, impatient);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "group formation timed out after 0.5 s: 1 of 3 ranks joined (missing: ranks 1, 2)");
  // The root dropped it, and the group can still form.
  auto members = join_concurrently((*server)->id(), std::vector<JoinOptions>(3), fast_options());
  for (auto& m : members) EXPECT_TRUE(m.is_ok()) << m.status().to_string();
}

TEST(BootstrapFormation, ACancelledJoinEndsAtOnceAndTheGroupCanStillForm) {
  auto server = BootstrapServer::start(local_id(), 3, fast_options());  // the root waits 20 s
  ASSERT_TRUE(server.is_ok());
  std::stop_source stop;
  JoinOptions jo;
  jo.rank = 1;
  jo.host_name = "cancelled-host";
  jo.cancel = stop.get_token();
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);  // long enough to have joined the root and be waiting
    stop.request_stop();
  });
  const auto start = Clock::now();
  auto r = Bootstrap::join((*server)->id(), std::move(jo), fast_options());
  const auto took = Clock::now() - start;
  canceller.join();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(contains(r.status().message(), "group formation cancelled by this member (rank 1, host cancelled-host)"))
      << r.status().message();
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 300ms + kSlack) << "the formation timeout is 20 s";
  // The root dropped the member that gave up: rank 1 is free again and the group forms.
  auto members = join_concurrently((*server)->id(), std::vector<JoinOptions>(3), fast_options());
  for (auto& m : members) EXPECT_TRUE(m.is_ok()) << m.status().to_string();
}

TEST(BootstrapFormation, AJoinCancelledBeforeItStartsAndAStopAfterFormationAreBothHarmless) {
  std::stop_source stopped;
  stopped.request_stop();
  JoinOptions early;
  early.cancel = stopped.get_token();
  auto id = UniqueId::generate("127.0.0.1", 1);  // never contacted successfully
  ASSERT_TRUE(id.is_ok());
  const auto start = Clock::now();
  auto r = Bootstrap::join(*id, std::move(early), fast_options());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
  EXPECT_LT(Clock::now() - start, kSlack);

  auto server = BootstrapServer::start(local_id(), 2, fast_options());
  ASSERT_TRUE(server.is_ok());
  std::stop_source later;
  std::vector<JoinOptions> joins(2);
  for (auto& j : joins) j.cancel = later.get_token();
  auto members = join_concurrently((*server)->id(), std::move(joins), fast_options());
  for (auto& m : members) ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  later.request_stop();  // formed: nothing to cancel, the group keeps working
  std::thread other([&] { EXPECT_TRUE((*members[1])->barrier().is_ok()); });
  EXPECT_TRUE((*members[0])->barrier().is_ok());
  other.join();
}

TEST(BootstrapFormation, AnUnreachableRootTimesOutWithTheLastError) {
  BootstrapOptions options = fast_options();
  options.formation_timeout = 500ms;
  auto id = UniqueId::generate("127.0.0.1", 1);  // nothing listens on port 1
  ASSERT_TRUE(id.is_ok());
  auto r = Bootstrap::join(*id, JoinOptions{}, options);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_TRUE(contains(r.status().message(),
                       "group formation timed out after 0.5 s: could not reach the rendezvous root at 127.0.0.1:1 "
                       "(last error: Connection refused)"))
      << r.status().message();
}

TEST(BootstrapFormation, BadArgumentsAreRefused) {
  const BootstrapOptions options = fast_options();
  auto incomplete = UniqueId::generate("127.0.0.1", 0);
  ASSERT_TRUE(incomplete.is_ok());
  auto r = Bootstrap::join(*incomplete, JoinOptions{}, options);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "port 0 (incomplete)")) << r.status().message();
  EXPECT_FALSE(contains(r.status().message(), incomplete->to_string().substr(20))) << "secret leaked";

  auto id = UniqueId::generate("127.0.0.1", 9);
  JoinOptions big;
  big.payload.resize(kMaxBootstrapPayloadBytes + 1);
  EXPECT_EQ(Bootstrap::join(*id, big, options).status().code(), StatusCode::kInvalidArgument);
  JoinOptions badrank;
  badrank.rank = -2;
  EXPECT_EQ(Bootstrap::join(*id, badrank, options).status().code(), StatusCode::kInvalidArgument);
  BootstrapOptions bad = options;
  bad.heartbeat_timeout = bad.heartbeat_interval;
  EXPECT_TRUE(contains(Bootstrap::join(*id, JoinOptions{}, bad).status().message(), "at least twice"));
  EXPECT_FALSE(BootstrapServer::start(local_id(), 0, options).is_ok());
  EXPECT_FALSE(BootstrapServer::start(local_id(), kMaxBootstrapRanks + 1, options).is_ok());
  EXPECT_FALSE(Bootstrap::join(std::unique_ptr<BootstrapServer>(), JoinOptions{}, options).is_ok());
}

TEST(BootstrapFormation, DestroyAndReformRepeatedly) {
  const BootstrapOptions options = fast_options();
  // A first group, so that threads which runtimes start lazily with the first thread (TSan's
  // background thread) exist before counting.
  form_group(1, options);
  // A joined thread can still be counted in /proc for a moment after pthread_join returns: count
  // once the number is steady, and give the end count the same moment.
  int threads_before = thread_count();
  for (int steady = 0; steady < 3;) {
    std::this_thread::sleep_for(20ms);
    const int now = thread_count();
    steady = now == threads_before ? steady + 1 : 0;
    threads_before = now;
  }
  for (int round = 0; round < 10; ++round) {
    Group g = form_group(3, options);
    ASSERT_EQ(g.members.size(), 3u);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 3; ++i)
      threads.emplace_back([&, i] {
        auto all = g.members[i]->allgather(bytes_of("x"));
        EXPECT_TRUE(all.is_ok()) << all.status().to_string();
      });
    for (auto& t : threads) t.join();
    // Members and the server go away in either order.
    if (round % 2 == 0) g.server.reset();
    g.members.clear();
  }
  int threads_after = thread_count();
  for (const auto deadline = Clock::now() + kSlack; threads_after > threads_before && Clock::now() < deadline;) {
    std::this_thread::sleep_for(10ms);
    threads_after = thread_count();
  }
  EXPECT_EQ(threads_after, threads_before) << "threads left behind";
}

// --- authentication ----------------------------------------------------------------------------

TEST(BootstrapAuth, AWrongSecretIsRejectedOnBothSidesAndTheGroupStillForms) {
  const BootstrapOptions options = fast_options();
  auto server = BootstrapServer::start(local_id(), 2, options);
  ASSERT_TRUE(server.is_ok());
  const UniqueId id = (*server)->id();
  auto wrong = UniqueId::generate("127.0.0.1", id.port());  // same address, another secret
  ASSERT_TRUE(wrong.is_ok());

  std::optional<Result<std::unique_ptr<Bootstrap>>> intruder;
  std::thread t([&] { intruder.emplace(Bootstrap::join(*wrong, JoinOptions{}, options)); });
  auto members = join_concurrently(id, std::vector<JoinOptions>(2), options);
  t.join();
  for (auto& m : members) EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  ASSERT_FALSE(intruder->is_ok());
  EXPECT_EQ(intruder->status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(intruder->status().message(), "authentication failed: wrong group secret"))
      << intruder->status().message();
  const auto rejections = (*server)->rejections();
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_TRUE(contains(rejections[0], "authentication failed: wrong group secret")) << rejections[0];
  for (const auto& s : {id.to_string().substr(21), wrong->to_string().substr(21)})
    EXPECT_FALSE(contains(intruder->status().message() + rejections[0], s)) << "a secret leaked into a message";
}

// Speaks the protocol without knowing the secret: the root refuses its join.
TEST(BootstrapAuth, AJoinWithoutTheSecretIsRefusedByTheRoot) {
  const BootstrapOptions options = fast_options();
  auto server = BootstrapServer::start(local_id(), 1, options);
  ASSERT_TRUE(server.is_ok());
  auto client = RawClient::connect((*server)->id().port());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->send_all(wire::encode(wire::Hello{wire::kProtocolVersion, wire::Nonce{}})));
  auto challenge = client->read_frame(5s);
  ASSERT_TRUE(challenge.has_value());
  ASSERT_TRUE(std::holds_alternative<wire::Challenge>(*wire::decode_frame(*challenge)));
  wire::Join join{0, false, "mallory", {1, 2}, wire::Mac{}};
  ASSERT_TRUE(client->send_all(wire::encode(join)));
  auto reply = client->read_frame(5s);
  ASSERT_TRUE(reply.has_value());
  auto error = wire::decode_frame(*reply);
  ASSERT_TRUE(error.is_ok());
  ASSERT_TRUE(std::holds_alternative<wire::Error>(*error));
  EXPECT_EQ(std::get<wire::Error>(*error).message, "authentication failed: wrong group secret");
  EXPECT_TRUE(client->closed_within(5s));
  EXPECT_EQ((*server)->joined(), 0);
  // The root keeps serving: a member with the secret still joins.
  auto legit = Bootstrap::join((*server)->id(), JoinOptions{}, options);
  EXPECT_TRUE(legit.is_ok()) << legit.status().to_string();
}

TEST(BootstrapAuth, AMemberSendsNothingToAnImpostorRoot) {
  BootstrapOptions options = fast_options();
  auto real = local_id();
  auto impostor = BootstrapServer::start(local_id(), 1, options);  // knows another secret
  ASSERT_TRUE(impostor.is_ok());
  const UniqueId pointed = real.with_port((*impostor)->id().port());
  JoinOptions jo;
  jo.payload = bytes_of("my-worker-address");
  auto r = Bootstrap::join(pointed, jo, options);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(r.status().message(), "authentication failed: wrong group secret")) << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), "nothing was sent")) << r.status().message();
  EXPECT_EQ((*impostor)->joined(), 0);
  const auto rejections = (*impostor)->rejections();
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_TRUE(contains(rejections[0], "rejected the root's proof")) << rejections[0];
}

TEST(BootstrapAuth, AnotherProtocolVersionIsToldSo) {
  auto server = BootstrapServer::start(local_id(), 1, fast_options());
  ASSERT_TRUE(server.is_ok());
  auto client = RawClient::connect((*server)->id().port());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->send_all({1, 10, 0, 0, 0, 'T', 'E', 'R', 'N', 'B', 'O', 'O', 'T', 9, 0}));
  auto reply = client->read_frame(5s);
  ASSERT_TRUE(reply.has_value());
  auto error = wire::decode_frame(*reply);
  ASSERT_TRUE(error.is_ok() && std::holds_alternative<wire::Error>(*error));
  EXPECT_EQ(std::get<wire::Error>(*error).message,
            "protocol version mismatch: the member speaks version 9, this root speaks 1");
}

// --- hostile clients ---------------------------------------------------------------------------

TEST(BootstrapRobustness, GarbageClientsDoNotDisturbFormation) {
  BootstrapOptions options = fast_options();
  options.handshake_timeout = 500ms;
  auto server = BootstrapServer::start(local_id(), 3, options);
  ASSERT_TRUE(server.is_ok());
  const std::uint16_t port = (*server)->id().port();

  std::mt19937 rng(7);
  std::vector<std::uint8_t> noise(4096);
  for (auto& b : noise) b = static_cast<std::uint8_t>(rng());
  noise[0] = 1;  // a hello of 100 bytes, so that the bytes reach the magic check
  noise[1] = 100;
  noise[2] = noise[3] = noise[4] = 0;

  std::vector<std::unique_ptr<RawClient>> clients;
  auto open = [&] {
    clients.push_back(RawClient::connect(port));
    EXPECT_NE(clients.back(), nullptr);
    return clients.back().get();
  };
  open()->send_all(noise);                                 // random bytes
  open()->send_all({1, 0xff, 0xff, 0xff, 0xff});           // a 4 GiB hello
  open()->send_all({3, 0x00, 0x00, 0x00, 0x10});           // a 256 MiB join, before any hello
  open();                                                  // connects, says nothing (slow loris)
  RawClient* half = open();                                // a valid hello, then silence
  half->send_all(wire::encode(wire::Hello{wire::kProtocolVersion, wire::Nonce{}}));
  RawClient* liar = open();                                // a hello, then a join announcing 60 MiB
  liar->send_all(wire::encode(wire::Hello{wire::kProtocolVersion, wire::Nonce{}}));
  liar->send_all({3, 0x00, 0x00, 0xc0, 0x03});

  auto members = join_concurrently((*server)->id(), std::vector<JoinOptions>(3), options);
  for (auto& m : members) ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  auto gathered = std::vector<std::optional<Result<std::vector<std::vector<std::uint8_t>>>>>(3);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 3; ++i)
    threads.emplace_back([&, i] { gathered[i].emplace((*members[i])->allgather(bytes_of("ok"))); });
  for (auto& t : threads) t.join();
  for (auto& g : gathered) EXPECT_TRUE(g->is_ok()) << g->status().to_string();

  // Every hostile connection is closed by the root, the silent ones by the handshake deadline.
  for (auto& c : clients) EXPECT_TRUE(c->closed_within(options.handshake_timeout + kSlack));
  auto rejections = (*server)->rejections();  // recorded just after the close: wait a moment
  for (const auto deadline = Clock::now() + kSlack; rejections.size() < clients.size() && Clock::now() < deadline;) {
    std::this_thread::sleep_for(5ms);
    rejections = (*server)->rejections();
  }
  std::string all;
  for (const auto& r : rejections) all += r + "\n";
  EXPECT_EQ(rejections.size(), clients.size()) << all;
  EXPECT_TRUE(contains(all, "bad magic")) << all;
  EXPECT_TRUE(contains(all, "announces 4294967295 bytes, more than the 2048 allowed")) << all;
  EXPECT_TRUE(contains(all, "expected a hello, got a join") || contains(all, "join frame announces")) << all;
  EXPECT_TRUE(contains(all, "announces 62914560 bytes, more than the 66048 allowed")) << all;
  EXPECT_TRUE(contains(all, "handshake not completed within 0.5 s")) << all;
}

TEST(BootstrapRobustness, HandshakesInProgressAreBoundedAndTheGroupStillForms) {
  BootstrapOptions options = fast_options();
  options.max_pending_handshakes = 2;
  options.handshake_timeout = 300ms;
  auto server = BootstrapServer::start(local_id(), 1, options);
  ASSERT_TRUE(server.is_ok());
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 5; ++i) idle.push_back(RawClient::connect((*server)->id().port()));
  // Beyond the bound, connections are closed at once (well before the handshake deadline)...
  int refused_at_once = 0;
  for (auto& c : idle) refused_at_once += c->closed_within(150ms) ? 1 : 0;
  EXPECT_GE(refused_at_once, 3);
  // ...and a member gets in once the idle ones have timed out (it retries meanwhile).
  auto m = Bootstrap::join((*server)->id(), JoinOptions{}, options);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
}

}  // namespace
}  // namespace tern::transport
