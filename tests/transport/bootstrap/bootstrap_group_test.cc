// A formed group: allgather and barrier, failure notices (clean leave, silence, root loss), the
// threading contract of the callback.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap_test_util.h"

namespace tern::transport {
namespace {

using namespace tern::transport::testing;
using Bytes = std::vector<std::uint8_t>;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs fn(rank) on one thread per member and waits for all.
template <typename Fn>
void on_every_rank(const Group& g, Fn fn) {
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < g.members.size(); ++r) threads.emplace_back([&fn, r] { fn(static_cast<int>(r)); });
  for (auto& t : threads) t.join();
}

TEST(BootstrapCollectives, AllgatherAndBarrierResultsAreCorrect) {
  Group g = form_group(4, fast_options());
  ASSERT_EQ(g.members.size(), 4u);
  std::atomic<int> arrived{0};
  on_every_rank(g, [&](int rank) {
    Bootstrap& m = *g.members[static_cast<std::size_t>(rank)];
    for (int round = 0; round < 20; ++round) {
      // Sizes differ by rank and round, zero included.
      Bytes mine(static_cast<std::size_t>((rank * 7 + round) % 5 * 100), static_cast<std::uint8_t>(rank * 16 + round));
      auto all = m.allgather(mine);
      ASSERT_TRUE(all.is_ok()) << all.status().to_string();
      ASSERT_EQ(all->size(), 4u);
      for (int r = 0; r < 4; ++r)
        EXPECT_EQ((*all)[static_cast<std::size_t>(r)],
                  Bytes(static_cast<std::size_t>((r * 7 + round) % 5 * 100), static_cast<std::uint8_t>(r * 16 + round)));
      arrived.fetch_add(1);
      ASSERT_TRUE(m.barrier().is_ok());
      EXPECT_GE(arrived.load(), 4 * (round + 1)) << "a rank left the barrier before everyone arrived";
      ASSERT_TRUE(m.barrier().is_ok());  // nobody starts the next round before all checked
    }
  });
}

TEST(BootstrapCollectives, LargestContributionsPassAndLargerAreRefused) {
  Group g = form_group(3, fast_options());
  ASSERT_EQ(g.members.size(), 3u);
  on_every_rank(g, [&](int rank) {
    Bytes mine(kMaxAllgatherBytes, static_cast<std::uint8_t>(rank));
    auto all = g.members[static_cast<std::size_t>(rank)]->allgather(mine);
    ASSERT_TRUE(all.is_ok()) << all.status().to_string();
    for (int r = 0; r < 3; ++r) EXPECT_EQ((*all)[static_cast<std::size_t>(r)], Bytes(kMaxAllgatherBytes, static_cast<std::uint8_t>(r)));
  });
  auto too_big = g.members[0]->allgather(Bytes(kMaxAllgatherBytes + 1));
  ASSERT_FALSE(too_big.is_ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
}

TEST(BootstrapCollectives, MismatchedCallsFailOnEveryRank) {
  Group g = form_group(2, fast_options());
  ASSERT_EQ(g.members.size(), 2u);
  Status s0;
  Status s1;
  std::thread t([&] { s0 = g.members[0]->barrier(); });
  s1 = g.members[1]->allgather(Bytes{1}).status();
  t.join();
  for (const Status& s : {s0, s1}) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(s.message(), "collective #1 mismatch: rank ")) << s.message();
  }
  // The group goes on: the next collective works.
  on_every_rank(g, [&](int rank) { EXPECT_TRUE(g.members[static_cast<std::size_t>(rank)]->barrier().is_ok()); });
}

TEST(BootstrapCollectives, ADeadlineNamesTheCollective) {
  Group g = form_group(2, fast_options());
  ASSERT_EQ(g.members.size(), 2u);
  const auto start = Clock::now();
  auto r = g.members[0]->allgather(Bytes{1}, 300ms);
  EXPECT_LT(Clock::now() - start, 300ms + kSlack);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_EQ(r.status().message(), "allgather #1 timed out after 0.3 s: not every rank of the group of 2 has called it");
  // A collective that timed out on one rank still counts there: a late partner completes it
  // (with the first rank's contribution), and the sequence stays aligned for the next ones.
  auto late = g.members[1]->allgather(Bytes{2});
  ASSERT_TRUE(late.is_ok()) << late.status().to_string();
  EXPECT_EQ(*late, (std::vector<Bytes>{{1}, {2}}));
  on_every_rank(g, [&](int rank) { EXPECT_TRUE(g.members[static_cast<std::size_t>(rank)]->barrier().is_ok()); });
  EXPECT_EQ(g.members[1]->barrier(300ms).code(), StatusCode::kTimeout);
}

TEST(BootstrapFailure, ACleanLeaveIsAnnouncedAsLeft) {
  FailureLog log;
  Group g = form_group(3, fast_options(), &log);
  ASSERT_EQ(g.members.size(), 3u);
  // A collective in flight when the member leaves fails promptly, not at its deadline.
  std::optional<Result<std::vector<Bytes>>> pending;
  std::thread t([&] { pending.emplace(g.members[0]->allgather(Bytes{1}, 20s)); });
  std::this_thread::sleep_for(100ms);
  const std::string host = g.members[1]->peers()[1].host;
  ASSERT_TRUE(g.members[1]->close().is_ok());
  EXPECT_TRUE(g.members[1]->close().is_ok()) << "close() is idempotent";
  auto why = log.wait_for(1, 5s);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), StatusCode::kPeerFailure);
  EXPECT_EQ(why->message(), "rank 1 (host " + host + ") left the group");
  t.join();
  ASSERT_FALSE(pending->is_ok());
  EXPECT_EQ(pending->status().code(), StatusCode::kPeerFailure);
  EXPECT_TRUE(contains(pending->status().message(), "allgather #1 failed: rank 1 (host " + host + ") left the group"))
      << pending->status().message();
  // Both remaining members were told; later collectives fail at once, naming the cause.
  const auto start = Clock::now();
  auto later = g.members[2]->barrier();
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_TRUE(contains(later.message(), "left the group")) << later.message();
  ASSERT_EQ(g.members[2]->failed_peers().size(), 1u);
  EXPECT_EQ(g.members[2]->failed_peers()[0].rank, 1);
  ASSERT_EQ(g.server->failed_peers().size(), 1u);
  for (const auto& [rank, status] : log.events()) EXPECT_FALSE(contains(status.message(), "silent"));
}

TEST(BootstrapFailure, ASilentMemberIsReportedWithinTheTimeout) {
  const BootstrapOptions options = detection_options();
  FailureLog log;
  Group g = form_group(3, options, &log);
  ASSERT_EQ(g.members.size(), 3u);
  const auto start = Clock::now();
  g.members[2]->pause_heartbeats_for_testing(true);
  auto why = log.wait_for(2, options.heartbeat_timeout + kSlack);
  ASSERT_TRUE(why.has_value()) << "no failure reported";
  const auto took = Clock::now() - start;
  EXPECT_GE(took, options.heartbeat_timeout - 50ms);
  EXPECT_EQ(why->code(), StatusCode::kPeerFailure);
  EXPECT_TRUE(contains(why->message(), "rank 2 (host " + g.members[2]->peers()[2].host + ") is silent for "))
      << why->message();
  // The silent member itself loses the root (the root dropped it).
  auto lost = log.wait_for(kRendezvousRoot, kSlack);
  ASSERT_TRUE(lost.has_value());
  EXPECT_TRUE(contains(lost->message(), "the rendezvous root at 127.0.0.1:")) << lost->message();
}

TEST(BootstrapFailure, HeartbeatsKeepAnIdleGroupAlive) {
  FailureLog log;
  const BootstrapOptions options = fast_options();
  Group g = form_group(3, options, &log);
  ASSERT_EQ(g.members.size(), 3u);
  std::this_thread::sleep_for(2 * options.heartbeat_timeout);  // 40 heartbeat intervals
  EXPECT_TRUE(log.events().empty()) << log.events()[0].second.message();
  on_every_rank(g, [&](int rank) { EXPECT_TRUE(g.members[static_cast<std::size_t>(rank)]->barrier().is_ok()); });
}

TEST(BootstrapFailure, ARootShutdownIsReported) {
  FailureLog log;
  Group g = form_group(2, fast_options(), &log);
  ASSERT_EQ(g.members.size(), 2u);
  g.server.reset();
  auto why = log.wait_for(kRendezvousRoot, kSlack);
  ASSERT_TRUE(why.has_value());
  EXPECT_TRUE(contains(why->message(), "the rendezvous root at 127.0.0.1:")) << why->message();
  EXPECT_TRUE(contains(why->message(), "shut down")) << why->message();
  EXPECT_EQ(g.members[0]->barrier().code(), StatusCode::kPeerFailure);
}

TEST(BootstrapFailure, WhenRankZeroHostsTheRootItsDepartureIsReportedOnce) {
  const BootstrapOptions options = fast_options();
  FailureLog log;
  auto server = BootstrapServer::start(local_id(), 3, options);
  ASSERT_TRUE(server.is_ok());
  const UniqueId id = (*server)->id();
  std::optional<Result<std::unique_ptr<Bootstrap>>> root;
  std::thread t([&] {
    JoinOptions jo;
    jo.rank = 0;
    jo.host_name = "n0";
    root.emplace(Bootstrap::join(std::move(*server), std::move(jo), options));
  });
  std::vector<JoinOptions> joins(2);
  for (auto& j : joins) j.on_peer_failure = log.callback();
  auto others = join_concurrently(id, std::move(joins), options);
  t.join();
  ASSERT_TRUE(root->is_ok());
  for (auto& o : others) ASSERT_TRUE(o.is_ok());
  root->value().reset();  // leaves, then its server shuts down
  auto why = log.wait_for(0, kSlack);
  ASSERT_TRUE(why.has_value());
  EXPECT_TRUE(contains(why->message(), "rank 0 (host n0)")) << why->message();
  std::this_thread::sleep_for(200ms);
  int reports_of_zero = 0;
  for (const auto& [rank, status] : log.events()) reports_of_zero += rank == 0 ? 1 : 0;
  EXPECT_EQ(reports_of_zero, 2) << "once per surviving member";
}

TEST(BootstrapFailure, CallbackContract) {
  // Runs on the bootstrap's thread; blocking calls from it are refused instead of deadlocking;
  // accessors work.
  const BootstrapOptions options = fast_options();
  auto server = BootstrapServer::start(local_id(), 2, options);
  ASSERT_TRUE(server.is_ok());
  std::atomic<bool> called{false};
  Status from_callback;
  std::string name_from_callback;
  std::size_t failed_seen = 0;
  Bootstrap* self = nullptr;
  std::mutex mu;
  std::vector<JoinOptions> joins(2);
  joins[0].rank = 0;
  joins[1].rank = 1;
  joins[0].on_peer_failure = [&](int rank, const Status&) {
    std::lock_guard lock(mu);
    from_callback = self->barrier();
    name_from_callback = self->peer_name(rank);
    failed_seen = self->failed_peers().size();
    called = true;
  };
  auto members = join_concurrently((*server)->id(), std::move(joins), options);
  ASSERT_TRUE(members[0].is_ok() && members[1].is_ok());
  {
    std::lock_guard lock(mu);
    self = members[0]->get();
  }
  ASSERT_TRUE((*members[1])->close().is_ok());
  const auto deadline = Clock::now() + kSlack;
  while (!called && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(called);
  std::lock_guard lock(mu);
  EXPECT_EQ(from_callback.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(from_callback.message(), "inside on_peer_failure")) << from_callback.message();
  EXPECT_TRUE(contains(name_from_callback, "rank 1 (host ")) << name_from_callback;
  EXPECT_EQ(failed_seen, 1u);
}

}  // namespace
}  // namespace tern::transport
