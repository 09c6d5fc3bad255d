// A group formed end to end (bootstrap + UCX + communicator) by forked processes: results agree
// across processes, and a killed (-9) or stopped (SIGSTOP) rank fails the running allreduce on
// every survivor, naming the rank, within the heartbeat timeout (far below the op deadline).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tern/transport/group.h"
#include "transport/group/group_test_util.h"

namespace tern::transport {
namespace {

GroupOptions test_options() {
  GroupOptions o;
  o.bootstrap.heartbeat_interval = std::chrono::milliseconds(100);
  o.bootstrap.heartbeat_timeout = std::chrono::milliseconds(1500);
  o.bootstrap.formation_timeout = std::chrono::seconds(20);
  o.ucx.config.push_back({"TLS", "tcp,self"});  // TCP: a dead peer's connection breaks at once
  return o;
}

enum class Victim { kNone, kKill, kStop };

// Forms a group of `n` processes; rank `victim_rank` blocks before the allreduce (the parent then
// kills or stops it). Returns each rank's report line (the victim's is empty when signalled).
std::vector<std::string> run(int n, Victim victim, int victim_rank, std::size_t count,
                             std::chrono::milliseconds op_timeout) {
  auto id = UniqueId::generate("127.0.0.1", testing::free_loopback_port());
  EXPECT_TRUE(id.is_ok());
  std::vector<testing::Child> children;
  for (int r = 0; r < n; ++r) {
    children.push_back(testing::fork_child([&, r]() -> std::string {
      auto group = Group::form(*id, r, n, test_options());
      if (!group.is_ok()) return "err " + group.status().to_string();
      if (victim != Victim::kNone && r == victim_rank) pause();  // waits for the parent's signal
      std::vector<float> x(count);
      for (std::size_t i = 0; i < count; ++i) x[i] = static_cast<float>((i * 7 + static_cast<std::size_t>(r)) % 13) - 6.0f;
      collective::AllreduceOptions o;
      o.timeout = op_timeout;
      const Status s = (*group)->communicator().allreduce(x.data(), count, o);
      if (!s.is_ok()) return "err " + s.to_string();
      std::uint64_t h = 1469598103934665603ull;
      for (float v : x) {
        std::uint32_t b;
        std::memcpy(&b, &v, 4);
        h = (h ^ b) * 1099511628211ull;
      }
      return "ok " + std::to_string(h);
    }));
    EXPECT_GE(children.back().pid, 0);
  }
  if (victim != Victim::kNone) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the others are inside the allreduce
    kill(children[static_cast<std::size_t>(victim_rank)].pid, victim == Victim::kKill ? SIGKILL : SIGSTOP);
  }
  std::vector<std::string> lines;
  for (int r = 0; r < n; ++r) {
    if (victim != Victim::kNone && r == victim_rank) {
      lines.emplace_back();
      continue;
    }
    lines.push_back(testing::read_all(children[static_cast<std::size_t>(r)].out));
  }
  for (auto& c : children) {
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    close(c.out);
  }
  return lines;
}

TEST(GroupProcesses, EveryRankEndsWithTheSameBits) {
  for (int n : {1, 2, 4}) {
    const auto lines = run(n, Victim::kNone, -1, 100003, std::chrono::seconds(20));
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(lines[static_cast<std::size_t>(r)].rfind("ok ", 0), 0u) << "rank " << r << ": " << lines[static_cast<std::size_t>(r)];
      EXPECT_EQ(lines[static_cast<std::size_t>(r)], lines[0]) << "rank " << r << " of " << n;
    }
  }
}

TEST(GroupProcesses, AKilledRankFailsEverySurvivorNamingIt) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto lines = run(3, Victim::kKill, 2, 1 << 20, std::chrono::seconds(60));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15)) << "must fail long before the 60 s deadline";
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(lines[static_cast<std::size_t>(r)].rfind("err ", 0), 0u) << lines[static_cast<std::size_t>(r)];
    EXPECT_NE(lines[static_cast<std::size_t>(r)].find("rank 2"), std::string::npos) << lines[static_cast<std::size_t>(r)];
  }
}

TEST(GroupProcesses, AStoppedRankFailsEverySurvivorWithinTheHeartbeatTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto lines = run(3, Victim::kStop, 1, 1 << 20, std::chrono::seconds(60));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15)) << "must fail long before the 60 s deadline";
  for (int r : {0, 2}) {
    EXPECT_EQ(lines[static_cast<std::size_t>(r)].rfind("err ", 0), 0u) << lines[static_cast<std::size_t>(r)];
    EXPECT_NE(lines[static_cast<std::size_t>(r)].find("rank 1"), std::string::npos) << lines[static_cast<std::size_t>(r)];
  }
}

}  // namespace
}  // namespace tern::transport
