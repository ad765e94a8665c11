#include "blockdev/nfs/unstable_log.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vdisk::blockdev::nfs {
namespace {

std::unique_ptr<char[]> Data(uint32_t n, char c) {
  std::unique_ptr<char[]> d(new char[n]);
  std::memset(d.get(), c, n);
  return d;
}

TEST(UnstableLog, CommitWithTheSameVerifierMakesWritesDurable) {
  UnstableLog log;
  uint64_t a = log.Add(0, 4096, Data(4096, 'a'), 7);
  uint64_t b = log.Add(4096, 4096, nullptr, 7);  // zeroes keep no data
  EXPECT_EQ(log.bytes(), 4096u);
  EXPECT_FALSE(log.Durable(b));
  uint64_t round = log.StartCommit();
  ASSERT_NE(round, 0u);
  EXPECT_FALSE(log.has_uncovered());
  EXPECT_EQ(log.StartCommit(), 0u);  // nothing left to cover
  log.CommitDone(round, 7);
  EXPECT_TRUE(log.Durable(a));
  EXPECT_TRUE(log.Durable(b));
  EXPECT_EQ(log.bytes(), 0u);
  EXPECT_EQ(log.size(), 0u);
}

TEST(UnstableLog, WritesAfterTheCommitStartedAreNotCovered) {
  UnstableLog log;
  uint64_t a = log.Add(0, 512, Data(512, 'a'), 1);
  uint64_t round = log.StartCommit();
  uint64_t b = log.Add(512, 512, Data(512, 'b'), 1);
  log.CommitDone(round, 1);
  EXPECT_TRUE(log.Durable(a));
  EXPECT_FALSE(log.Durable(b));
  EXPECT_TRUE(log.has_uncovered());
}

TEST(UnstableLog, ChangedVerifierAtCommitMeansResend) {
  UnstableLog log;
  uint64_t a = log.Add(0, 512, Data(512, 'a'), 1);
  uint64_t round = log.StartCommit();
  log.CommitDone(round, 2);  // the server restarted between the write and the commit
  EXPECT_FALSE(log.Durable(a));
  ASSERT_TRUE(log.has_due());
  auto resends = log.TakeResends();
  ASSERT_EQ(resends.size(), 1u);
  EXPECT_EQ(resends[0]->offset, 0u);
  EXPECT_EQ(resends[0]->data[0], 'a');
  EXPECT_FALSE(log.has_due());
  EXPECT_TRUE(log.has_resends());
  EXPECT_EQ(log.StartCommit(), 0u);  // a resend in flight is not covered
  log.Resent(a, /*stable=*/false, 2);
  round = log.StartCommit();
  ASSERT_NE(round, 0u);
  log.CommitDone(round, 2);
  EXPECT_TRUE(log.Durable(a));
}

TEST(UnstableLog, ChangedVerifierOnALaterWriteMarksOlderOnesDue) {
  UnstableLog log;
  uint64_t a = log.Add(0, 512, Data(512, 'a'), 1);
  uint64_t b = log.Add(512, 512, Data(512, 'b'), 2);  // reply after a restart
  auto resends = log.TakeResends();
  ASSERT_EQ(resends.size(), 1u);
  EXPECT_EQ(resends[0]->id, a);
  log.Resent(a, /*stable=*/true, 2);  // answered FILE_SYNC: nothing more to keep
  EXPECT_TRUE(log.Durable(a));
  EXPECT_FALSE(log.Durable(b));
}

TEST(UnstableLog, FailedCommitUncovers) {
  UnstableLog log;
  uint64_t a = log.Add(0, 512, Data(512, 'a'), 1);
  uint64_t round = log.StartCommit();
  log.CommitFailed(round);
  EXPECT_TRUE(log.has_uncovered());
  EXPECT_FALSE(log.Durable(a));
  round = log.StartCommit();
  log.CommitDone(round, 1);
  EXPECT_TRUE(log.Durable(a));
}

TEST(UnstableLog, DropForgetsTheEntry) {
  UnstableLog log;
  uint64_t a = log.Add(0, 512, Data(512, 'a'), 1);
  log.Observe(2);
  auto resends = log.TakeResends();
  ASSERT_EQ(resends.size(), 1u);
  log.Drop(a);
  EXPECT_TRUE(log.Durable(a));
  EXPECT_FALSE(log.has_resends());
  EXPECT_EQ(log.bytes(), 0u);
}

}  // namespace
}  // namespace vdisk::blockdev::nfs
