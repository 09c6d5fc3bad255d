// Members and roots in real processes: kill -9 and SIGSTOP, which no in-process hook imitates
// faithfully (the kernel closes a killed process's sockets; a stopped one keeps them open).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <thread>
#include <vector>

#include "bootstrap_test_util.h"

namespace tern::transport {
namespace {

using namespace tern::transport::testing;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()); }

// A group of three around a root in this process: ranks 0 and 1 are threads here, rank 2 is a
// child process.
struct MixedGroup {
  std::unique_ptr<BootstrapServer> server;
  std::vector<std::unique_ptr<Bootstrap>> members;
  std::unique_ptr<Child> child;
};

void form_mixed(MixedGroup& g, FailureLog& log, const BootstrapOptions& options) {
  auto server = BootstrapServer::start(local_id(), 3, options);
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  g.server = std::move(*server);
  g.child = Child::spawn({"member", g.server->id().to_string(), "2", "child-host", ms(options.heartbeat_interval),
                          ms(options.heartbeat_timeout)});
  ASSERT_NE(g.child, nullptr);
  std::vector<JoinOptions> joins(2);
  for (int r = 0; r < 2; ++r) {
    joins[static_cast<std::size_t>(r)].rank = r;
    joins[static_cast<std::size_t>(r)].on_peer_failure = log.callback();
  }
  auto results = join_concurrently(g.server->id(), std::move(joins), options);
  for (auto& r : results) {
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    g.members.push_back(std::move(*r));
  }
  EXPECT_EQ(g.child->read_line(kSlack), "JOINED 2");
  EXPECT_EQ(g.members[0]->peers()[2].host, "child-host");
  EXPECT_EQ(g.members[0]->peers()[2].payload, (std::vector<std::uint8_t>{1, 2, 3}));
}

TEST(BootstrapProcess, AKilledMemberIsReportedAsLeft) {
  const BootstrapOptions options = fast_options();
  FailureLog log;
  MixedGroup g;
  form_mixed(g, log, options);
  ASSERT_EQ(g.members.size(), 2u);
  const auto start = Clock::now();
  g.child->signal(SIGKILL);
  auto why = log.wait_for(2, options.heartbeat_timeout + kSlack);
  ASSERT_TRUE(why.has_value()) << "the death of rank 2 was not reported";
  EXPECT_LT(Clock::now() - start, options.heartbeat_timeout + kSlack);
  EXPECT_EQ(why->code(), StatusCode::kPeerFailure);
  EXPECT_TRUE(contains(why->message(), "rank 2 (host child-host) left: its connection to the rendezvous root broke"))
      << why->message();
  // Both in-process members heard it, exactly once each.
  const auto deadline = Clock::now() + kSlack;
  while (log.events().size() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(log.events().size(), 2u);
  for (const auto& m : g.members) ASSERT_EQ(m->failed_peers().size(), 1u);
}

TEST(BootstrapProcess, AStoppedMemberIsReportedAsSilent) {
  const BootstrapOptions options = detection_options();
  FailureLog log;
  MixedGroup g;
  form_mixed(g, log, options);
  ASSERT_EQ(g.members.size(), 2u);
  const auto start = Clock::now();
  g.child->signal(SIGSTOP);  // its sockets stay open: only the heartbeats can tell
  auto why = log.wait_for(2, options.heartbeat_timeout + kSlack);
  ASSERT_TRUE(why.has_value()) << "the stopped rank 2 was not reported";
  EXPECT_GE(Clock::now() - start, options.heartbeat_timeout - 50ms);
  EXPECT_TRUE(contains(why->message(), "rank 2 (host child-host) is silent for ")) << why->message();
  g.child->signal(SIGKILL);  // works on a stopped process; the destructor reaps it
}

TEST(BootstrapProcess, AKilledRootIsReportedUnreachable) {
  const BootstrapOptions options = fast_options();
  auto child = Child::spawn({"root", "3", "root-host", ms(options.heartbeat_interval), ms(options.heartbeat_timeout)});
  ASSERT_NE(child, nullptr);
  auto line = child->read_line(kSlack + 5s);
  ASSERT_TRUE(line.has_value());
  ASSERT_EQ(line->substr(0, 3), "ID ");
  auto id = UniqueId::parse(line->substr(3));
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  FailureLog log;
  std::vector<JoinOptions> joins(2);
  for (auto& j : joins) j.on_peer_failure = log.callback();
  auto members = join_concurrently(*id, std::move(joins), options);
  for (auto& m : members) {
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    EXPECT_EQ((*m)->root_rank(), 0);
  }
  EXPECT_EQ(child->read_line(kSlack), "JOINED 0");
  child->signal(SIGKILL);
  auto why = log.wait_for(0, options.heartbeat_timeout + kSlack);
  ASSERT_TRUE(why.has_value()) << "the loss of the root was not reported";
  EXPECT_TRUE(contains(why->message(), "rank 0 (host root-host) / the rendezvous root at " + id->address() +
                                           " is unreachable"))
      << why->message();
  EXPECT_EQ((*members[0])->barrier().code(), StatusCode::kPeerFailure);
}

TEST(BootstrapProcess, AChildLeavesCleanly) {
  const BootstrapOptions options = fast_options();
  FailureLog log;
  MixedGroup g;
  form_mixed(g, log, options);
  ASSERT_EQ(g.members.size(), 2u);
  const int status = g.child->finish();  // closes its stdin: it calls close() and exits
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto why = log.wait_for(2, kSlack);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->message(), "rank 2 (host child-host) left the group");
}

}  // namespace
}  // namespace tern::transport
