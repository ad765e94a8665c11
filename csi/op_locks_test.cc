#include "csi/op_locks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace vdisk::csi {
namespace {

TEST(OpLocks, SecondExclusiveHolderIsAborted) {
  OpLocks locks;
  auto a = locks.Acquire({"volume v1"});
  ASSERT_TRUE(a.ok());
  auto b = locks.Acquire({"volume v1"});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(locks.Acquire({"volume v2"}).ok());
}

TEST(OpLocks, ReleasedOnDestruction) {
  OpLocks locks;
  {
    auto a = locks.Acquire({"k"});
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(locks.held(), 1u);
  }
  EXPECT_EQ(locks.held(), 0u);
  EXPECT_TRUE(locks.Acquire({"k"}).ok());
}

TEST(OpLocks, AllOrNothing) {
  OpLocks locks;
  auto a = locks.Acquire({"b"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(locks.Acquire({"a", "b"}).ok());
  EXPECT_EQ(locks.held(), 1u);  // "a" was not left behind
  EXPECT_TRUE(locks.Acquire({"a"}).ok());
}

TEST(OpLocks, SharedHoldersCoexistButBlockExclusive) {
  OpLocks locks;
  auto s1 = locks.Acquire({"name x"}, {"volume golden"});
  auto s2 = locks.Acquire({"name y"}, {"volume golden"});
  ASSERT_TRUE(s1.ok());
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(locks.Acquire({"volume golden"}).status().code(), absl::StatusCode::kAborted);
  *s1 = OpLocks::Guard();
  EXPECT_EQ(locks.Acquire({"volume golden"}).status().code(), absl::StatusCode::kAborted);
  *s2 = OpLocks::Guard();
  auto ex = locks.Acquire({"volume golden"});
  ASSERT_TRUE(ex.ok());
  EXPECT_EQ(locks.Acquire({}, {"volume golden"}).status().code(), absl::StatusCode::kAborted);
}

TEST(OpLocks, ConcurrentContendersExactlyOneWins) {
  OpLocks locks;
  std::atomic<int> wins{0}, aborted{0};
  std::atomic<bool> go{false};
  std::vector<OpLocks::Guard> held(16);
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      while (!go) {}
      auto g = locks.Acquire({"volume same"});
      if (g.ok()) {
        ++wins;
        held[i] = std::move(*g);
      } else {
        ++aborted;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins, 1);
  EXPECT_EQ(aborted, 15);
}

}  // namespace
}  // namespace vdisk::csi
