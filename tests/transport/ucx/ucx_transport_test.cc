// UcxTransport with every rank in this process (each with its own UCX context and worker), driven
// round robin from the test thread, over UCX's default choice (shared memory) and over TCP.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <memory>
#include <thread>

#include "transport/ucx/ucx_test_util.h"

namespace tern::transport::ucx_test {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

class UcxTransportTest : public ::testing::TestWithParam<Fabric> {
 protected:
  Transports make(int n, std::vector<UcxSetting> extra = {}) {
    auto ranks = make_ranks(n, options_for(GetParam(), std::move(extra)));
    EXPECT_TRUE(ranks.is_ok()) << ranks.status().to_string();
    if (!ranks.is_ok()) return Transports{};
    return std::move(ranks).value();
  }
};

TEST_P(UcxTransportTest, PingPong) {
  Transports t = make(2);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0]->rank(), 0);
  EXPECT_EQ(t[1]->size(), 2);
  constexpr int kRounds = 200;
  std::array<std::uint64_t, 1> ping{}, pong{}, in0{}, in1{};
  int round = 0;
  bool failed = false;
  // Rank 1 echoes what it gets; rank 0 checks the echo and sends the next value. Each callback
  // posts the next operation (callbacks may post).
  std::function<void()> post_round = [&] {
    ping[0] = 1000 + static_cast<std::uint64_t>(round);
    failed |= !t[1]->recv(0, 7, in1.data(), 8, MemoryKind::kHost, [&](const Completion& c) {
      failed |= !c.status.is_ok() || c.bytes != 8;
      pong = in1;
      failed |= !t[1]->send(0, 8, pong.data(), 8, MemoryKind::kHost, [&](const Completion& s) {
        failed |= !s.status.is_ok();
      }).is_ok();
    }).is_ok();
    failed |= !t[0]->recv(1, 8, in0.data(), 8, MemoryKind::kHost, [&](const Completion& c) {
      failed |= !c.status.is_ok() || c.bytes != 8 || in0[0] != 1000 + static_cast<std::uint64_t>(round);
      if (++round < kRounds) post_round();
    }).is_ok();
    failed |= !t[0]->send(1, 7, ping.data(), 8, MemoryKind::kHost, [&](const Completion& c) {
      failed |= !c.status.is_ok();
    }).is_ok();
  };
  post_round();
  ASSERT_TRUE(drive_until(t, [&] { return round == kRounds || failed; }));
  EXPECT_FALSE(failed);
}

// Both directions at once, every size class, contents checked; receives posted before the sends
// for one direction and after them for the other.
TEST_P(UcxTransportTest, SizesFromEmptyTo64MiBWithContent) {
  Transports t = make(2);
  ASSERT_EQ(t.size(), 2u);
  const std::vector<std::size_t> sizes = {0, 1, 4099, kMiB, 64 * kMiB};
  struct Message {
    std::vector<std::byte> out, in;
    Outcome sent, received;
  };
  std::vector<std::unique_ptr<Message>> msgs;  // [from 0 | from 1] x sizes
  for (int from = 0; from < 2; ++from) {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto m = std::make_unique<Message>();
      m->out = pattern(sizes[i], 100 * static_cast<std::uint64_t>(from) + i);
      m->in.assign(sizes[i], std::byte{0});
      msgs.push_back(std::move(m));
    }
  }
  auto post_recvs = [&](int to) {
    const int from = 1 - to;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      Message& m = *msgs[static_cast<std::size_t>(from) * sizes.size() + i];
      ASSERT_TRUE(t[static_cast<std::size_t>(to)]->recv(from, i, m.in.data(), m.in.size(), MemoryKind::kHost,
                                                         m.received.fn()).is_ok());
    }
  };
  auto post_sends = [&](int from) {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      Message& m = *msgs[static_cast<std::size_t>(from) * sizes.size() + i];
      ASSERT_TRUE(t[static_cast<std::size_t>(from)]->send(1 - from, i, m.out.data(), m.out.size(), MemoryKind::kHost,
                                                           m.sent.fn()).is_ok());
    }
  };
  post_recvs(1);  // 0 -> 1: receives first
  post_sends(0);
  post_sends(1);  // 1 -> 0: sends first (eager ones arrive unexpected)
  pump(t, 20ms);
  post_recvs(0);
  ASSERT_TRUE(drive_until(t, [&] {
    for (auto& m : msgs) {
      if (m->sent.calls == 0 || m->received.calls == 0) return false;
    }
    return true;
  }));
  for (std::size_t k = 0; k < msgs.size(); ++k) {
    Message& m = *msgs[k];
    SCOPED_TRACE("message " + std::to_string(k) + " of " + std::to_string(m.out.size()) + " bytes");
    EXPECT_EQ(m.sent.calls, 1);
    EXPECT_EQ(m.received.calls, 1);
    EXPECT_TRUE(m.sent.completion.status.is_ok()) << m.sent.completion.status.to_string();
    EXPECT_TRUE(m.received.completion.status.is_ok()) << m.received.completion.status.to_string();
    EXPECT_EQ(m.sent.completion.bytes, m.out.size());
    EXPECT_EQ(m.received.completion.bytes, m.out.size());
    EXPECT_FALSE(pattern_mismatch(m.in, 100 * (k / sizes.size()) + k % sizes.size()).has_value());
  }
}

// Four ranks, every ordered pair, many messages in flight at once.
TEST_P(UcxTransportTest, ManyConcurrentMessagesAllToAll) {
  constexpr int kRanks = 4;
  constexpr int kPerPair = 12;
  const std::array<std::size_t, 6> sizes = {0, 1, 13, 4099, 65539, kMiB};
  Transports t = make(kRanks);
  ASSERT_EQ(t.size(), static_cast<std::size_t>(kRanks));
  struct Message {
    int from, to, index;
    std::vector<std::byte> out, in;
    Outcome sent, received;
  };
  std::vector<std::unique_ptr<Message>> msgs;
  auto seed = [](const Message& m) { return static_cast<std::uint64_t>((m.from * kRanks + m.to) * 1000 + m.index); };
  for (int from = 0; from < kRanks; ++from) {
    for (int to = 0; to < kRanks; ++to) {
      if (from == to) continue;
      for (int k = 0; k < kPerPair; ++k) {
        auto m = std::make_unique<Message>();
        m->from = from;
        m->to = to;
        m->index = k;
        const std::size_t size = sizes[static_cast<std::size_t>(k) % sizes.size()];
        m->out = pattern(size, seed(*m));
        m->in.assign(size, std::byte{0xee});
        msgs.push_back(std::move(m));
      }
    }
  }
  // Half the receives before any send, the rest after.
  for (auto& m : msgs) {
    if (m->index % 2 == 0) {
      ASSERT_TRUE(t[static_cast<std::size_t>(m->to)]->recv(m->from, static_cast<Tag>(m->index), m->in.data(),
                                                            m->in.size(), MemoryKind::kHost, m->received.fn()).is_ok());
    }
  }
  for (auto& m : msgs) {
    ASSERT_TRUE(t[static_cast<std::size_t>(m->from)]->send(m->to, static_cast<Tag>(m->index), m->out.data(),
                                                            m->out.size(), MemoryKind::kHost, m->sent.fn()).is_ok());
  }
  for (auto& m : msgs) {
    if (m->index % 2 == 1) {
      ASSERT_TRUE(t[static_cast<std::size_t>(m->to)]->recv(m->from, static_cast<Tag>(m->index), m->in.data(),
                                                            m->in.size(), MemoryKind::kHost, m->received.fn()).is_ok());
    }
  }
  ASSERT_TRUE(drive_until(t, [&] {
    for (auto& m : msgs) {
      if (m->sent.calls == 0 || m->received.calls == 0) return false;
    }
    return true;
  }));
  for (auto& m : msgs) {
    SCOPED_TRACE(std::to_string(m->from) + "->" + std::to_string(m->to) + " #" + std::to_string(m->index));
    EXPECT_EQ(m->sent.calls, 1);
    EXPECT_EQ(m->received.calls, 1);
    EXPECT_TRUE(m->received.completion.status.is_ok()) << m->received.completion.status.to_string();
    EXPECT_EQ(m->received.completion.bytes, m->out.size());
    EXPECT_FALSE(pattern_mismatch(m->in, seed(*m)).has_value());
  }
}

// UCX matches on the tag alone; the transport puts the sender into it. The same engine tag from
// two senders must land in the receive posted for each sender, whatever the arrival order, and
// messages of one pair with one tag match in posting order.
TEST_P(UcxTransportTest, TagMatchingIsPerSource) {
  Transports t = make(3);
  ASSERT_EQ(t.size(), 3u);
  constexpr Tag kTag = 42;
  std::vector<std::byte> from1 = pattern(300, 1), from2 = pattern(300, 2);
  std::vector<std::byte> in1(300), in2(300);
  Outcome r1, r2, s1, s2;
  // Rank 2 sends first and rank 0 posts the receive for rank 1 first.
  ASSERT_TRUE(t[2]->send(0, kTag, from2.data(), 300, MemoryKind::kHost, s2.fn()).is_ok());
  pump(t, 10ms);
  ASSERT_TRUE(t[0]->recv(1, kTag, in1.data(), 300, MemoryKind::kHost, r1.fn()).is_ok());
  ASSERT_TRUE(t[0]->recv(2, kTag, in2.data(), 300, MemoryKind::kHost, r2.fn()).is_ok());
  ASSERT_TRUE(t[1]->send(0, kTag, from1.data(), 300, MemoryKind::kHost, s1.fn()).is_ok());
  ASSERT_TRUE(drive_until(t, [&] { return r1.calls && r2.calls && s1.calls && s2.calls; }));
  EXPECT_TRUE(r1.completion.status.is_ok());
  EXPECT_TRUE(r2.completion.status.is_ok());
  EXPECT_EQ(in1, from1);
  EXPECT_EQ(in2, from2);

  // Ordering within a pair and tag.
  constexpr int kCount = 5;
  std::array<std::uint32_t, kCount> out{}, in{};
  std::array<Outcome, kCount> sent, received;
  for (int i = 0; i < kCount; ++i) {
    out[static_cast<std::size_t>(i)] = 0xabc0u + static_cast<std::uint32_t>(i);
    ASSERT_TRUE(t[1]->send(0, kTag, &out[static_cast<std::size_t>(i)], 4, MemoryKind::kHost,
                           sent[static_cast<std::size_t>(i)].fn()).is_ok());
  }
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(t[0]->recv(1, kTag, &in[static_cast<std::size_t>(i)], 4, MemoryKind::kHost,
                           received[static_cast<std::size_t>(i)].fn()).is_ok());
  }
  ASSERT_TRUE(drive_until(t, [&] {
    for (auto& r : received) {
      if (r.calls == 0) return false;
    }
    return true;
  }));
  EXPECT_EQ(in, out);
}

TEST_P(UcxTransportTest, TruncationIsCorruptDataAndThePairStaysUsable) {
  Transports t = make(2);
  ASSERT_EQ(t.size(), 2u);
  for (std::size_t size : {std::size_t{100}, 2 * kMiB}) {  // eager, then rendezvous
    SCOPED_TRACE(size);
    std::vector<std::byte> out = pattern(size, 9);
    std::vector<std::byte> in(size / 2 + 16, std::byte{0x5a});  // the tail must stay untouched
    const std::size_t capacity = size / 2;
    Outcome sent, received;
    ASSERT_TRUE(t[1]->send(0, 3, out.data(), size, MemoryKind::kHost, sent.fn()).is_ok());
    ASSERT_TRUE(t[0]->recv(1, 3, in.data(), capacity, MemoryKind::kHost, received.fn()).is_ok());
    ASSERT_TRUE(drive_until(t, [&] { return sent.calls && received.calls; }));
    EXPECT_EQ(received.calls, 1);
    EXPECT_EQ(received.completion.status.code(), StatusCode::kCorruptData) << received.completion.status.to_string();
    std::printf("%s\n", received.completion.status.to_string().c_str());
    EXPECT_NE(received.completion.status.message().find("rank 1"), std::string::npos);
    EXPECT_NE(received.completion.status.message().find(std::to_string(capacity) + " bytes"), std::string::npos)
        << received.completion.status.message();
    for (std::size_t i = capacity; i < in.size(); ++i) {
      ASSERT_EQ(in[i], std::byte{0x5a}) << "written past capacity at " << i;
    }

    // The pair still works.
    std::uint64_t value = 77, got = 0;
    Outcome s2, r2;
    ASSERT_TRUE(t[1]->send(0, 4, &value, 8, MemoryKind::kHost, s2.fn()).is_ok());
    ASSERT_TRUE(t[0]->recv(1, 4, &got, 8, MemoryKind::kHost, r2.fn()).is_ok());
    ASSERT_TRUE(drive_until(t, [&] { return s2.calls && r2.calls; }));
    EXPECT_TRUE(r2.completion.status.is_ok()) << r2.completion.status.to_string();
    EXPECT_EQ(got, 77u);
  }
}

// Completions are never reported from inside send()/recv(), even when UCX completes at once
// (small eager sends; a receive whose message already arrived).
TEST_P(UcxTransportTest, ImmediateCompletionsAreReportedAtTheNextProgress) {
  Transports t = make(2);
  ASSERT_EQ(t.size(), 2u);
  std::uint64_t value = 5, got = 0;
  Outcome sent;
  ASSERT_TRUE(t[1]->send(0, 1, &value, 8, MemoryKind::kHost, sent.fn()).is_ok());
  EXPECT_EQ(sent.calls, 0);
  // Let the message arrive at rank 0 (unexpected: no receive yet).
  ASSERT_TRUE(drive_until(t, [&] { return sent.calls == 1; }));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(t[0]->progress(0ms).is_ok());
  Outcome received;
  ASSERT_TRUE(t[0]->recv(1, 1, &got, 8, MemoryKind::kHost, received.fn()).is_ok());
  EXPECT_EQ(received.calls, 0);
  ASSERT_TRUE(t[0]->progress(0ms).is_ok());
  EXPECT_EQ(received.calls, 1);
  EXPECT_TRUE(received.completion.status.is_ok());
  EXPECT_EQ(received.completion.bytes, 8u);
  EXPECT_EQ(got, 5u);
}

TEST_P(UcxTransportTest, InvalidArgumentsAreRejectedWithoutCallbacks) {
  Transports t = make(2);
  ASSERT_EQ(t.size(), 2u);
  std::uint64_t buffer = 0;
  Outcome never;
  EXPECT_EQ(t[0]->send(2, 1, &buffer, 8, MemoryKind::kHost, never.fn()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t[0]->send(-1, 1, &buffer, 8, MemoryKind::kHost, never.fn()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t[0]->send(0, 1, &buffer, 8, MemoryKind::kHost, never.fn()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t[0]->recv(0, 1, &buffer, 8, MemoryKind::kHost, never.fn()).code(), StatusCode::kInvalidArgument);
  const Status big = t[0]->send(1, kUcxMaxTag + 1, &buffer, 8, MemoryKind::kHost, never.fn());
  EXPECT_EQ(big.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(big.message().find("48 bits"), std::string::npos) << big.message();
  EXPECT_EQ(t[0]->recv(1, ~Tag{0}, &buffer, 8, MemoryKind::kHost, never.fn()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t[0]->send(1, 1, nullptr, 8, MemoryKind::kHost, never.fn()).code(), StatusCode::kInvalidArgument);
  // kUcxMaxTag itself is fine, and so is an empty message without a buffer.
  Outcome sent, received;
  ASSERT_TRUE(t[0]->send(1, kUcxMaxTag, nullptr, 0, MemoryKind::kHost, sent.fn()).is_ok());
  ASSERT_TRUE(t[1]->recv(0, kUcxMaxTag, nullptr, 0, MemoryKind::kHost, received.fn()).is_ok());
  ASSERT_TRUE(drive_until(t, [&] { return sent.calls && received.calls; }));
  EXPECT_TRUE(received.completion.status.is_ok());
  EXPECT_EQ(received.completion.bytes, 0u);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(t[0]->progress(0ms).is_ok());
  EXPECT_EQ(never.calls, 0);
}

TEST_P(UcxTransportTest, CudaMemoryIsUnavailableWithoutCudaInUcx) {
  Transports t = make(2);
  ASSERT_EQ(t.size(), 2u);
  if (t[0]->capabilities().cuda_memory) GTEST_SKIP() << "this UCX supports CUDA memory";
  std::uint64_t buffer = 0;
  Outcome never;
  const Status s = t[0]->send(1, 1, &buffer, 8, MemoryKind::kCuda, never.fn());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("no CUDA support"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("host memory"), std::string::npos) << s.message();
  EXPECT_EQ(t[1]->recv(0, 1, &buffer, 8, MemoryKind::kCuda, never.fn()).code(), StatusCode::kUnavailable);
  ASSERT_TRUE(t[0]->progress(0ms).is_ok());
  EXPECT_EQ(never.calls, 0);
}

TEST_P(UcxTransportTest, CapabilitiesNameTheSelectedTransports) {
  Transports t = make(3);
  ASSERT_EQ(t.size(), 3u);
  // Let the endpoints finish wiring up.
  std::uint64_t a = 1, b = 0;
  Outcome s, r;
  ASSERT_TRUE(t[0]->send(1, 1, &a, 8, MemoryKind::kHost, s.fn()).is_ok());
  ASSERT_TRUE(t[1]->recv(0, 1, &b, 8, MemoryKind::kHost, r.fn()).is_ok());
  ASSERT_TRUE(drive_until(t, [&] { return s.calls && r.calls; }));

  const Capabilities caps = t[0]->capabilities();
  std::printf("capabilities (%s): %s\n", fabric_name(GetParam()).c_str(), caps.description.c_str());
  const auto local = UcxLocalWorker::create();
  ASSERT_TRUE(local.is_ok());
  EXPECT_EQ(caps.description.rfind("ucx " + local->ucx_version() + " [", 0), 0u) << caps.description;
  if (GetParam() == Fabric::kTcp) {
    EXPECT_NE(caps.description.find("tcp/"), std::string::npos) << caps.description;
  } else {
    // Shared memory must survive error handling mode PEER (the MM_ERROR_HANDLING default).
    const bool shm = caps.description.find("sysv/") != std::string::npos ||
                     caps.description.find("posix/") != std::string::npos;
    EXPECT_TRUE(shm) << caps.description;
  }
  const auto info = static_cast<UcxTransport&>(*t[0]).endpoint_info();
  ASSERT_EQ(info.size(), 2u);
  EXPECT_EQ(info[0].peer, 1);
  EXPECT_EQ(info[1].peer, 2);
  for (const auto& e : info) {
    EXPECT_FALSE(e.failed);
    EXPECT_FALSE(e.transports.empty());
    for (const auto& lane : e.lanes) std::printf("  to rank %d: %s\n", e.peer, lane.c_str());
  }
}

// fail_peer: the engine gave up on a silent peer. Pending operations with it complete at the next
// progress() (never inside fail_peer()), and so do later ones.
TEST_P(UcxTransportTest, FailPeerFailsPendingAndLaterOperations) {
  Transports t = make(3);
  ASSERT_EQ(t.size(), 3u);
  std::vector<std::byte> big = pattern(8 * kMiB, 3);  // rendezvous: waits for a receive that never comes
  std::uint64_t small_in = 0, small_out = 1;
  Outcome recv_pending, send_pending, healthy_recv, healthy_send;
  ASSERT_TRUE(t[0]->recv(1, 10, &small_in, 8, MemoryKind::kHost, recv_pending.fn()).is_ok());
  ASSERT_TRUE(t[0]->send(1, 11, big.data(), big.size(), MemoryKind::kHost, send_pending.fn()).is_ok());
  std::uint64_t from2 = 0, to0 = 99;
  ASSERT_TRUE(t[0]->recv(2, 10, &from2, 8, MemoryKind::kHost, healthy_recv.fn()).is_ok());
  pump(t, 30ms);
  ASSERT_EQ(recv_pending.calls + send_pending.calls, 0);

  const Status reason(StatusCode::kPeerFailure, "rank 1 missed its deadline");
  t[0]->fail_peer(1, reason);
  EXPECT_EQ(recv_pending.calls + send_pending.calls, 0);  // not from inside fail_peer()
  ASSERT_TRUE(t[0]->progress(0ms).is_ok());
  EXPECT_EQ(recv_pending.calls, 1);
  EXPECT_EQ(send_pending.calls, 1);
  EXPECT_EQ(recv_pending.completion.status.code(), StatusCode::kPeerFailure);
  EXPECT_EQ(recv_pending.completion.status.message(), reason.message());
  EXPECT_EQ(send_pending.completion.status.message(), reason.message());
  big.assign(1, std::byte{0});  // the engine may free the buffer now: UCX has let go of it

  Outcome later_send, later_recv;
  ASSERT_TRUE(t[0]->send(1, 12, &small_out, 8, MemoryKind::kHost, later_send.fn()).is_ok());
  ASSERT_TRUE(t[0]->recv(1, 12, &small_in, 8, MemoryKind::kHost, later_recv.fn()).is_ok());
  EXPECT_EQ(later_send.calls + later_recv.calls, 0);
  ASSERT_TRUE(t[0]->progress(0ms).is_ok());
  EXPECT_EQ(later_send.calls, 1);
  EXPECT_EQ(later_recv.calls, 1);
  EXPECT_EQ(later_send.completion.status.message(), reason.message());
  EXPECT_EQ(static_cast<UcxTransport&>(*t[0]).endpoint_info()[0].failed, true);

  // Rank 2 is unaffected.
  ASSERT_TRUE(t[2]->send(0, 10, &to0, 8, MemoryKind::kHost, healthy_send.fn()).is_ok());
  ASSERT_TRUE(drive_until(t, [&] { return healthy_recv.calls && healthy_send.calls; }));
  EXPECT_TRUE(healthy_recv.completion.status.is_ok());
  EXPECT_EQ(from2, 99u);
  EXPECT_EQ(recv_pending.calls, 1);
  EXPECT_EQ(send_pending.calls, 1);
}

// Destroying a transport completes everything pending exactly once, from the destructor.
TEST_P(UcxTransportTest, DestroyWithPendingOperationsRunsEachCallbackOnce) {
  Transports t = make(3);
  ASSERT_EQ(t.size(), 3u);
  std::vector<std::byte> big = pattern(4 * kMiB, 4);
  std::uint64_t in1 = 0, in2 = 0;
  Outcome r1, r2, s1, s2;
  ASSERT_TRUE(t[0]->recv(1, 1, &in1, 8, MemoryKind::kHost, r1.fn()).is_ok());
  ASSERT_TRUE(t[0]->recv(2, 1, &in2, 8, MemoryKind::kHost, r2.fn()).is_ok());
  ASSERT_TRUE(t[0]->send(1, 2, big.data(), big.size(), MemoryKind::kHost, s1.fn()).is_ok());
  ASSERT_TRUE(t[0]->send(2, 2, big.data(), big.size(), MemoryKind::kHost, s2.fn()).is_ok());
  pump(t, 30ms);
  Status posted_from_callback;
  UcxTransport* rank0 = t[0].get();  // t[0] is already null while its destructor runs
  CompletionFn repost = [&](const Completion& c) {
    r1.fn()(c);
    std::uint64_t x = 0;
    posted_from_callback = rank0->send(1, 3, &x, 8, MemoryKind::kHost, [](const Completion&) { ADD_FAILURE(); });
  };
  // A second receive whose callback also tries to post during shutdown.
  ASSERT_TRUE(t[0]->recv(1, 5, &in1, 8, MemoryKind::kHost, repost).is_ok());
  t[0].reset();
  for (Outcome* o : {&r2, &s1, &s2}) {
    EXPECT_EQ(o->calls, 1);
    EXPECT_EQ(o->completion.status.code(), StatusCode::kUnavailable) << o->completion.status.to_string();
    EXPECT_NE(o->completion.status.message().find("shut down"), std::string::npos);
  }
  EXPECT_EQ(r1.calls, 2);  // its own completion and the reposting receive's
  EXPECT_EQ(posted_from_callback.code(), StatusCode::kUnavailable);
  // The survivors notice rank 0 left; destroying them completes nothing twice.
  t.clear();
  EXPECT_EQ(r2.calls, 1);
  EXPECT_EQ(s1.calls, 1);
}

TEST_P(UcxTransportTest, WakeInterruptsAWaitingProgress) {
  Transports t = make(2);
  ASSERT_EQ(t.size(), 2u);
  const auto start = std::chrono::steady_clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    t[0]->wake();
  });
  ASSERT_TRUE(t[0]->progress(10s).is_ok());
  waker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);

  // A wake() before progress() makes the next one return promptly too.
  t[0]->wake();
  const auto again = std::chrono::steady_clock::now();
  ASSERT_TRUE(t[0]->progress(10s).is_ok());
  EXPECT_LT(std::chrono::steady_clock::now() - again, 3s);

  // Without events or wake-ups, progress() waits about max_wait.
  const auto idle = std::chrono::steady_clock::now();
  ASSERT_TRUE(t[0]->progress(150ms).is_ok());
  const auto waited = std::chrono::steady_clock::now() - idle;
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 3s);
}

// Each rank on its own thread with blocking progress() (the event fd path), as in a daemon.
TEST_P(UcxTransportTest, RanksOnTheirOwnThreads) {
  constexpr int kRanks = 3;
  constexpr int kMessages = 20;
  Transports t = make(kRanks);
  ASSERT_EQ(t.size(), static_cast<std::size_t>(kRanks));
  std::atomic<int> failures{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int me = 0; me < kRanks; ++me) {
    threads.emplace_back([&, me] {
      Transport& tr = *t[static_cast<std::size_t>(me)];
      std::vector<std::vector<std::byte>> out, in;
      int done = 0, expected = 0;
      for (int peer = 0; peer < kRanks; ++peer) {
        if (peer == me) continue;
        for (int k = 0; k < kMessages; ++k) {
          const auto extra = static_cast<std::size_t>(k);
          const std::size_t size = k % 3 == 0 ? 300 * 1024 + extra : 64 + extra;  // rendezvous / eager
          out.push_back(pattern(size, static_cast<std::uint64_t>(me * 100 + peer * 10000 + k)));
          in.emplace_back(size);
        }
      }
      std::size_t slot = 0;
      for (int peer = 0; peer < kRanks; ++peer) {
        if (peer == me) continue;
        for (int k = 0; k < kMessages; ++k, ++slot) {
          auto* buffer = &in[slot];
          const auto seed = static_cast<std::uint64_t>(peer * 100 + me * 10000 + k);
          expected += 2;
          if (!tr.recv(peer, static_cast<Tag>(k), buffer->data(), buffer->size(), MemoryKind::kHost,
                       [&, buffer, seed](const Completion& c) {
                         if (!c.status.is_ok() || pattern_mismatch(*buffer, seed)) ++failures;
                         ++done;
                       }).is_ok()) {
            ++failures;
          }
          if (!tr.send(peer, static_cast<Tag>(k), out[slot].data(), out[slot].size(), MemoryKind::kHost,
                       [&](const Completion& c) {
                         if (!c.status.is_ok()) ++failures;
                         ++done;
                       }).is_ok()) {
            ++failures;
          }
        }
      }
      if (!drive_until(tr, [&] { return done == expected; })) ++failures;
      // Keep progressing until every rank is done: a peer may still need our side of a transfer.
      ++finished;
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      while (finished.load() < kRanks && std::chrono::steady_clock::now() < deadline) {
        (void)tr.progress(5ms);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Fabrics, UcxTransportTest, ::testing::Values(Fabric::kDefault, Fabric::kTcp),
                         [](const ::testing::TestParamInfo<Fabric>& p) { return fabric_name(p.param); });

TEST(UcxTransportCreate, RejectsInconsistentArguments) {
  auto local = UcxLocalWorker::create();
  ASSERT_TRUE(local.is_ok()) << local.status().to_string();
  const std::vector<std::byte> mine = local->address();
  EXPECT_FALSE(mine.empty());
  EXPECT_EQ(UcxTransport::create(std::move(*local), 2, {mine, mine}).status().code(), StatusCode::kInvalidArgument);
  auto again = UcxLocalWorker::create();
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(UcxTransport::create(std::move(*again), 0, {mine, mine}, {"only one name"}).status().code(),
            StatusCode::kInvalidArgument);
  UcxOptions bad;
  bad.config.push_back({"UCX_TLS", "tcp"});  // names go without the prefix
  EXPECT_EQ(UcxLocalWorker::create(bad).status().code(), StatusCode::kInvalidArgument);
  UcxOptions bad_value;
  bad_value.config.push_back({"KEEPALIVE_INTERVAL", "not a time"});
  EXPECT_EQ(UcxLocalWorker::create(bad_value).status().code(), StatusCode::kInvalidArgument);
  UcxOptions bad_slice;
  bad_slice.poll_slice = std::chrono::milliseconds(0);
  EXPECT_EQ(UcxLocalWorker::create(bad_slice).status().code(), StatusCode::kInvalidArgument);
}

TEST(UcxTransportCreate, SingleRankGroupHasNoEndpoints) {
  auto local = UcxLocalWorker::create();
  ASSERT_TRUE(local.is_ok());
  const std::vector<std::byte> mine = local->address();
  auto t = UcxTransport::create(std::move(*local), 0, {mine});
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ((*t)->size(), 1);
  EXPECT_TRUE((*t)->progress(0ms).is_ok());
  EXPECT_NE((*t)->capabilities().description.find("no live endpoints"), std::string::npos);
}

TEST(UcxLocalWorker, ReportsAppliedDefaults) {
  auto local = UcxLocalWorker::create(options_for(Fabric::kDefault));
  ASSERT_TRUE(local.is_ok());
  const auto applied = local->applied_settings();
  for (const auto& s : applied) std::printf("applied %s\n", s.c_str());
  if (std::getenv("UCX_KEEPALIVE_INTERVAL") == nullptr) {
    EXPECT_NE(std::find(applied.begin(), applied.end(), "KEEPALIVE_INTERVAL=1s"), applied.end());
  }
  auto tcp = UcxLocalWorker::create(options_for(Fabric::kTcp));
  ASSERT_TRUE(tcp.is_ok());
  for (const auto& s : tcp->applied_settings()) EXPECT_EQ(s.find("MM_ERROR_HANDLING"), std::string::npos) << s;
}

}  // namespace
}  // namespace tern::transport::ucx_test
