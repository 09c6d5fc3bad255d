// Ranks as threads over the loopback transport, and an independent reference of the allreduce.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <thread>
#include <vector>

#include "kernels/codec_test_util.h"
#include "tern/transport/collective.h"
#include "tern/transport/loopback.h"

namespace tern::collective::testing {

/// Creates `n` communicators over one loopback hub and runs `body(rank, comm)` on n threads.
inline void run_group(int n, const CommunicatorOptions& options,
                      const std::function<void(int, std::unique_ptr<Communicator>&)>& body) {
  auto transports = transport::make_loopback_group(n);
  std::vector<std::unique_ptr<Communicator>> comms;
  for (auto& t : transports) {
    auto c = Communicator::create(std::move(t), options);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    comms.push_back(std::move(*c));
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back([&, r] { body(r, comms[static_cast<std::size_t>(r)]); });
  for (auto& t : threads) t.join();
}

}  // namespace tern::collective::testing
