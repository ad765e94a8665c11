// Token buckets on a simulated clock: the admitted amount over a window is the rate times the
// window plus the bucket, bursts are capped at their own rate, reconfiguration keeps the level.
#include "blockdev/qos/token_bucket.h"

#include <gtest/gtest.h>

namespace vdisk::blockdev::qos {
namespace {

// Admits unit-cost operations as fast as the bucket allows for `seconds`; returns how many.
template <typename B>
uint64_t Saturate(B& b, double start, double seconds, double cost = 1) {
  uint64_t n = 0;
  double t = start;
  while (t < start + seconds) {
    b.Refill(t);
    if (b.CanStart()) {
      b.Take(cost);
      ++n;
    } else {
      t += b.SecondsUntilStart();
    }
  }
  return n;
}

TEST(TokenBucket, UnlimitedAlwaysStarts) {
  TokenBucket b;
  b.Configure(0, 0, 0);
  EXPECT_TRUE(b.CanStart());
  b.Take(1e9);
  EXPECT_TRUE(b.CanStart());
  EXPECT_EQ(b.SecondsUntilStart(), 0);
}

TEST(TokenBucket, SustainedRateIsTheLimit) {
  RateBuckets b;
  b.Configure({2000, 0}, 1, 0);
  const uint64_t n = Saturate(b, 0, 10);
  // 2000/s for 10 s, plus the initial bucket (a tenth of a second) and one operation of debt.
  EXPECT_GE(n, 20000u);
  EXPECT_LE(n, 20000u + 200 + 1);
}

TEST(TokenBucket, LargeRequestsRunOnDebt) {
  RateBuckets b;
  b.Configure({200ull << 20, 0}, 1, 0);  // 200 MiB/s, bucket 20 MiB
  const uint64_t n = Saturate(b, 0, 10, 64 << 20);  // 64 MiB requests: larger than the bucket
  EXPECT_GE(n * 64, 2000u);
  EXPECT_LE(n * 64, 2000u + 20 + 64);
}

TEST(TokenBucket, BurstIsBoundedInRateAndDuration) {
  RateBuckets b;
  b.Configure({100, 1000}, 2, 0);  // 100/s sustained, bursts of 1000/s for 2 s
  // First second: the burst rate caps it (1000/s + its 100-op bucket), not the 2000-op bucket.
  const uint64_t first = Saturate(b, 0, 1);
  EXPECT_GE(first, 1000u);
  EXPECT_LE(first, 1101u);
  // After the bucket is spent, the sustained rate rules.
  Saturate(b, 1, 2);
  const uint64_t later = Saturate(b, 3, 10);
  EXPECT_GE(later, 990u);
  EXPECT_LE(later, 1001u);
}

TEST(TokenBucket, ReconfigureKeepsDebtAndUnlimitStarts) {
  TokenBucket b;
  b.Configure(10, 1, 0);
  b.Take(5);  // level -4
  EXPECT_FALSE(b.CanStart());
  b.Configure(100, 10, 0);  // faster: the debt is repaid sooner
  EXPECT_NEAR(b.SecondsUntilStart(), 0.04, 1e-3);
  b.Configure(0, 0, 0);
  EXPECT_TRUE(b.CanStart());
}

}  // namespace
}  // namespace vdisk::blockdev::qos
