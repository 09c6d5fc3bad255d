// ternctl status against an in-process ternd with a formed group.
#include <gtest/gtest.h>

#include <cstdio>
#include <future>
#include <nlohmann/json.hpp>

#include "daemon_test_util.h"
#include "tern/tern.hpp"

namespace tern::daemon::test {
namespace {

std::string run(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {};
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(Ternctl, ShowsGroupsMembersOpsAndCodecBytes) {
  TempDir dir;
  const std::string sock = dir.path() + "/t.sock";
  TestDaemon daemon(test_config(sock));
  tern::Client c0(sock.c_str()), c1(sock.c_str());
  const tern::UniqueId id = c0.unique_id();
  auto g1 = std::async(std::launch::async, [&] { return std::make_unique<tern::Group>(c1, id, tern::GroupConfig{1, 2, 2, 10000, 0}); });
  tern::Group g0(c0, id, {0, 2, 2, 10000, 0});
  auto group1 = g1.get();
  tern::Buffer b0(c0, 4096), b1(c1, 4096);
  tern::AllreduceArgs a0(b0.data(), 1024), a1(b1.data(), 1024);
  std::memset(b0.data(), 0, 4096);
  std::memset(b1.data(), 0, 4096);
  tern::Request r0 = g0.allreduce(a0);
  tern::Request r1 = group1->allreduce(a1);
  EXPECT_TRUE(r0.wait(10000));
  EXPECT_TRUE(r1.wait(10000));

  const auto j = nlohmann::json::parse(run(std::string(TERN_CTL) + " status --json --socket " + sock));
  ASSERT_EQ(j.at("groups").size(), 1u);
  const auto& g = j.at("groups")[0];
  EXPECT_EQ(g.at("state"), "formed");
  EXPECT_EQ(g.at("members").size(), 2u);
  EXPECT_EQ(g.at("ops_done"), 1);
  EXPECT_EQ(g.at("codecs").at("terngrad/terngrad").at("ops"), 1);
  EXPECT_GE(j.at("clients").size(), 2u);

  const std::string human = run(std::string(TERN_CTL) + " status --socket " + sock);
  EXPECT_NE(human.find("[formed]: 2 trainers on 1 nodes"), std::string::npos) << human;
  EXPECT_NE(human.find("terngrad/terngrad: 1 ops"), std::string::npos) << human;
  EXPECT_NE(human.find("rank 1: present"), std::string::npos) << human;

  const std::string missing = run(std::string(TERN_CTL) + " status --socket " + dir.path() + "/none.sock 2>&1");
  EXPECT_NE(missing.find("unavailable: no ternd at"), std::string::npos) << missing;
}

}  // namespace
}  // namespace tern::daemon::test
