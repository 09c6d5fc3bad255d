// UcxTransport between processes: rank 0 is the test process, the others are forked children;
// worker addresses travel through pipes (the bootstrap's job in production). Children are forked
// before the test process creates any UCX object, so none inherits UCX state or threads.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>

#include "transport/ucx/ucx_test_util.h"

namespace tern::transport::ucx_test {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
const std::byte kDone[1] = {std::byte{'d'}};
const std::byte kExit[1] = {std::byte{'x'}};

// Every rank sends every other rank one message of each size and checks what it receives.
// Returns the number of failed checks.
int all_to_all(Transport& t) {
  const std::vector<std::size_t> sizes = {0, 1, 4099, kMiB, 16 * kMiB};
  struct Slot {
    std::vector<std::byte> out, in;
    std::uint64_t in_seed = 0;
    Outcome sent, received;
  };
  std::vector<std::unique_ptr<Slot>> slots;
  for (int peer = 0; peer < t.size(); ++peer) {
    if (peer == t.rank()) continue;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto s = std::make_unique<Slot>();
      s->out = pattern(sizes[i], static_cast<std::uint64_t>(t.rank() * 1000 + peer * 10) + i);
      s->in.assign(sizes[i], std::byte{0});
      s->in_seed = static_cast<std::uint64_t>(peer * 1000 + t.rank() * 10) + i;
      if (!t.recv(peer, i, s->in.data(), s->in.size(), MemoryKind::kHost, s->received.fn()).is_ok()) return 1;
      if (!t.send(peer, i, s->out.data(), s->out.size(), MemoryKind::kHost, s->sent.fn()).is_ok()) return 1;
      slots.push_back(std::move(s));
    }
  }
  const bool finished = drive_until(t, [&] {
    for (auto& s : slots) {
      if (s->sent.calls == 0 || s->received.calls == 0) return false;
    }
    return true;
  });
  if (!check(finished, "rank " + std::to_string(t.rank()) + ": all-to-all did not finish")) return 1;
  int failures = 0;
  for (auto& s : slots) {
    failures += !check(s->sent.calls == 1 && s->received.calls == 1, "one completion each");
    failures += !check(s->sent.completion.status.is_ok(), s->sent.completion.status.to_string());
    failures += !check(s->received.completion.status.is_ok(), s->received.completion.status.to_string());
    failures += !check(s->received.completion.bytes == s->in.size(), "received length");
    failures += !check(!pattern_mismatch(s->in, s->in_seed).has_value(), "received content");
  }
  return failures;
}

// Keeps progressing until the parent says everybody is done (a peer may still need us).
bool child_barrier(Channel& parent, Transport& t) {
  if (!parent.write(kDone)) return false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (parent.read(0ms)) return true;
    (void)t.progress(5ms);
  }
  return false;
}

bool parent_barrier(std::vector<Child>& children, Transport& t) {
  std::size_t done = 0;
  std::vector<bool> seen(children.size(), false);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (done < children.size()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (!seen[i] && children[i].channel.read(0ms)) {
        seen[i] = true;
        ++done;
      }
    }
    (void)t.progress(5ms);
  }
  for (Child& c : children) c.channel.write(kExit);
  return true;
}

// A child rank: exchange addresses, build the transport, run `work`, exit with its result.
std::function<int(Channel&)> child_rank(int rank, int size, UcxOptions options,
                                        std::function<int(Transport&, Channel&)> work) {
  return [=](Channel& parent) {
    auto local = UcxLocalWorker::create(options);
    if (!check(local.is_ok(), local.status().to_string())) return 2;
    auto addresses = exchange_as_child(parent, local->address());
    const bool exchanged = addresses.has_value() && addresses->size() == static_cast<std::size_t>(size);
    if (!check(exchanged, "address exchange")) return 3;
    auto t = UcxTransport::create(std::move(*local), rank, std::move(*addresses), peer_names(size));
    if (!check(t.is_ok(), t.status().to_string())) return 4;
    return work(**t, parent);
  };
}

class UcxForkTest : public ::testing::TestWithParam<Fabric> {};

TEST_P(UcxForkTest, ThreeProcessesAllToAllWithContent) {
  constexpr int kRanks = 3;
  const UcxOptions options = options_for(GetParam());
  std::vector<Child> children;
  for (int r = 1; r < kRanks; ++r) {
    children.push_back(fork_child(child_rank(r, kRanks, options, [](Transport& t, Channel& parent) {
      const int failures = all_to_all(t);
      return child_barrier(parent, t) ? failures : 10 + failures;
    })));
  }
  {
    auto local = UcxLocalWorker::create(options);
    ASSERT_TRUE(local.is_ok()) << local.status().to_string();
    auto addresses = exchange_as_parent(children, local->address());
    ASSERT_TRUE(addresses.has_value());
    auto t = UcxTransport::create(std::move(*local), 0, std::move(*addresses), peer_names(kRanks));
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    std::printf("rank 0 (%s): %s\n", fabric_name(GetParam()).c_str(), (*t)->capabilities().description.c_str());
    EXPECT_EQ(all_to_all(**t), 0);
    EXPECT_TRUE(parent_barrier(children, **t));
  }
  for (Child& c : children) EXPECT_EQ(wait_child(c.pid), 0);
}

// kill -9 of a peer in the middle of a stream of messages: every pending operation with it (a
// receive it will never send, a receive mid-stream, a send it never takes) completes with
// kPeerFailure naming it within a bounded time, and so does a later send.
TEST_P(UcxForkTest, KilledPeerFailsPendingOperationsQuickly) {
  // A short keepalive: on shared memory it is how UCX notices the dead process.
  const UcxOptions options = options_for(GetParam(), {{"KEEPALIVE_INTERVAL", "100ms"}});
  std::vector<Child> children;
  children.push_back(fork_child(child_rank(1, 2, options, [](Transport& t, Channel&) {
    // Stream 1 MiB messages with tags 0, 1, 2, ... two at a time, until killed.
    std::vector<std::byte> payload = pattern(kMiB, 1);
    int in_flight = 0;
    Tag next = 0;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      while (in_flight < 2) {
        if (!t.send(0, next++, payload.data(), payload.size(), MemoryKind::kHost,
                    [&](const Completion&) { --in_flight; }).is_ok()) {
          return 5;
        }
        ++in_flight;
      }
      (void)t.progress(1ms);
    }
    return 6;  // should have been killed
  })));

  auto local = UcxLocalWorker::create(options);
  ASSERT_TRUE(local.is_ok()) << local.status().to_string();
  auto addresses = exchange_as_parent(children, local->address());
  ASSERT_TRUE(addresses.has_value());
  auto created = UcxTransport::create(std::move(*local), 0, std::move(*addresses), peer_names(2));
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  Transport& t = **created;

  // Receive part of the stream, keeping two receives posted.
  std::vector<std::vector<std::byte>> buffers;
  std::vector<std::unique_ptr<Outcome>> stream;
  auto post_next = [&] {
    buffers.emplace_back(kMiB);
    stream.push_back(std::make_unique<Outcome>());
    ASSERT_TRUE(t.recv(1, static_cast<Tag>(stream.size() - 1), buffers.back().data(), kMiB, MemoryKind::kHost,
                       stream.back()->fn()).is_ok());
  };
  buffers.reserve(1000);
  post_next();
  post_next();
  std::uint64_t never_sent = 0;
  Outcome orphan_recv;
  ASSERT_TRUE(t.recv(1, 999999, &never_sent, 8, MemoryKind::kHost, orphan_recv.fn()).is_ok());
  std::size_t received = 0;
  ASSERT_TRUE(drive_until(t, [&] {
    while (received < stream.size() && stream[received]->calls == 1) {
      EXPECT_TRUE(stream[received]->completion.status.is_ok()) << stream[received]->completion.status.to_string();
      EXPECT_FALSE(pattern_mismatch(buffers[received], 1).has_value());
      ++received;
      post_next();
    }
    return received >= 3;
  }));
  std::vector<std::byte> big = pattern(32 * kMiB, 2);
  Outcome pending_send;
  ASSERT_TRUE(t.send(1, 7, big.data(), big.size(), MemoryKind::kHost, pending_send.fn()).is_ok());
  (void)t.progress(0ms);

  ASSERT_EQ(::kill(children[0].pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(children[0].pid, &status, 0), children[0].pid);  // reaped: its pid is gone
  const auto killed = std::chrono::steady_clock::now();

  auto all_done = [&] {
    if (orphan_recv.calls == 0 || pending_send.calls == 0) return false;
    for (auto& s : stream) {
      if (s->calls == 0) return false;
    }
    return true;
  };
  ASSERT_TRUE(drive_until(t, all_done, 10s)) << "pending operations with the killed peer did not complete";
  const auto elapsed = std::chrono::steady_clock::now() - killed;
  std::printf("%s: failure reported %.1f ms after kill -9\n", fabric_name(GetParam()).c_str(),
              std::chrono::duration<double, std::milli>(elapsed).count());
  EXPECT_LT(elapsed, 5s);

  auto expect_peer_failure = [](const Outcome& o, const char* what) {
    EXPECT_EQ(o.calls, 1) << what;
    EXPECT_EQ(o.completion.status.code(), StatusCode::kPeerFailure) << what << ": " << o.completion.status.to_string();
    EXPECT_NE(o.completion.status.message().find("rank 1 (host "), std::string::npos) << o.completion.status.message();
  };
  expect_peer_failure(orphan_recv, "receive posted for a message never sent");
  expect_peer_failure(pending_send, "send the peer never received");
  // A stream message that was already in flight (socket buffer, shared-memory FIFO) may still
  // arrive whole; anything else fails. Either way: exactly once, and never corrupt.
  for (std::size_t i = received; i < stream.size(); ++i) {
    SCOPED_TRACE("stream message " + std::to_string(i));
    if (stream[i]->completion.status.is_ok()) {
      EXPECT_EQ(stream[i]->calls, 1);
      EXPECT_FALSE(pattern_mismatch(buffers[i], 1).has_value());
    } else {
      expect_peer_failure(*stream[i], "receive in the stream");
    }
  }
  std::printf("  reason: %s\n", orphan_recv.completion.status.to_string().c_str());
  big.assign(1, std::byte{0});  // reported: the buffer is ours again

  Outcome later;
  std::uint64_t value = 1;
  ASSERT_TRUE(t.send(1, 8, &value, 8, MemoryKind::kHost, later.fn()).is_ok());
  EXPECT_EQ(later.calls, 0);  // not synchronously
  ASSERT_TRUE(t.progress(0ms).is_ok());
  expect_peer_failure(later, "send after the failure");
  EXPECT_TRUE(static_cast<UcxTransport&>(t).endpoint_info()[0].failed);
}

INSTANTIATE_TEST_SUITE_P(Fabrics, UcxForkTest, ::testing::Values(Fabric::kDefault, Fabric::kTcp),
                         [](const ::testing::TestParamInfo<Fabric>& p) { return fabric_name(p.param); });

}  // namespace
}  // namespace tern::transport::ucx_test
