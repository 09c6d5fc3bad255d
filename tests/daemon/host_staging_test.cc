// HostStaging: the host memory a group stages GPU buffers through (daemon/src/cuda_memory.h).
// Here (no GPU) it is the aligned fallback; on a GPU machine it is page-locked. Either way it must
// be 64-byte aligned, hold what was asked, keep its memory while big enough and grow when not.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "cuda_memory.h"

namespace tern::daemon {
namespace {

TEST(HostStaging, AlignedReusedAndGrown) {
  HostStaging staging;
  EXPECT_EQ(staging.capacity(), 0u);
  auto first = staging.reserve(1000);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(*first) % 64, 0u);
  std::memset(*first, 0x5A, 1000);  // ASan: all 1000 bytes are ours
  EXPECT_EQ(staging.capacity(), 1000u);

  auto smaller = staging.reserve(10);
  ASSERT_TRUE(smaller.is_ok());
  EXPECT_EQ(*smaller, *first) << "a smaller request reuses the buffer";
  EXPECT_EQ((*smaller)[999], 0x5A);

  auto larger = staging.reserve(3u << 20);
  ASSERT_TRUE(larger.is_ok()) << larger.status().to_string();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(*larger) % 64, 0u);
  EXPECT_EQ(staging.capacity(), 3u << 20);
  std::memset(*larger, 0x11, 3u << 20);
  if (!cuda_built()) {
    EXPECT_FALSE(staging.pinned()) << "without CUDA there is nothing to pin with";
  }
}

TEST(HostStaging, ZeroBytesIsAValidBuffer) {
  HostStaging staging;
  auto p = staging.reserve(0);
  ASSERT_TRUE(p.is_ok());
  EXPECT_NE(*p, nullptr);
}

}  // namespace
}  // namespace tern::daemon
