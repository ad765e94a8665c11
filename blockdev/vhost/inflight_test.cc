// The inflight log's recovery rules (vhost-user.rst, "Inflight I/O tracking", split queues): what a
// new back end concludes from a region an earlier one left behind, including the states a crash
// between two steps leaves, and regions that cannot be trusted.
#include "blockdev/vhost/inflight.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

namespace vdisk::blockdev::vhost {
namespace {

constexpr uint16_t kNum = 8;

class InflightLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InflightPayload p{};
    auto fd = InflightArea::Create(2, kNum, &p);
    ASSERT_TRUE(fd.ok()) << fd.status();
    EXPECT_EQ(p.num_queues, 2);
    EXPECT_EQ(p.queue_size, kNum);
    EXPECT_EQ(p.mmap_offset, 0u);
    EXPECT_GE(p.mmap_size, 2 * (sizeof(InflightQueueHeader) + kNum * sizeof(InflightDescSplit)));
    payload_ = p;
    auto area = InflightArea::Map(p, std::move(*fd));
    ASSERT_TRUE(area.ok()) << area.status();
    area_ = std::move(*area);
  }
  InflightQueueHeader* region(unsigned q = 0) { return area_->queue(q); }
  InflightDescSplit* desc(unsigned q = 0) { return reinterpret_cast<InflightDescSplit*>(region(q) + 1); }

  InflightPayload payload_{};
  std::unique_ptr<InflightArea> area_;
};

TEST_F(InflightLogTest, AFreshRegionIsInitialisedWithNothingInFlight) {
  auto log = InflightLog::Attach(region(), kNum, kNum, 5);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE(log->in_flight().empty());
  EXPECT_EQ(region()->version, kInflightVersion);
  EXPECT_EQ(region()->desc_num, kNum);
  EXPECT_EQ(region()->used_idx, 5);
  EXPECT_EQ(area_->queue(2), nullptr);
  EXPECT_NE(area_->queue(1), region(0));
}

TEST_F(InflightLogTest, HeadsTakenAndNotUsedAreResubmittedOldestFirst) {
  {
    auto log = InflightLog::Attach(region(), kNum, kNum, 0);
    ASSERT_TRUE(log.ok());
    for (uint16_t h : {3, 1, 6, 0}) log->Taken(h);
    log->Used(1);   // completed and published: not in flight any more
    log->Published(1);
    log->Used(6);   // queued for the driver but never published (crash): still in flight
  }
  auto again = InflightLog::Attach(region(), kNum, kNum, 1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->in_flight(), (std::vector<uint16_t>{3, 6, 0}));
}

TEST_F(InflightLogTest, ABatchTheDriverAlreadySawIsNotResubmitted) {
  {
    auto log = InflightLog::Attach(region(), kNum, kNum, 10);
    ASSERT_TRUE(log.ok());
    for (uint16_t h : {2, 4, 5, 7}) log->Taken(h);
    log->Used(4);
    log->Used(2);
    // The back end published used index 12 and died before clearing the batch: the region still
    // says 2 and 4 are in flight and that the used index is 10.
  }
  EXPECT_EQ(desc()[2].inflight, 1);
  EXPECT_EQ(region()->used_idx, 10);
  auto again = InflightLog::Attach(region(), kNum, kNum, 12);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->in_flight(), (std::vector<uint16_t>{5, 7}));
  EXPECT_EQ(region()->used_idx, 12);
  // Taken after a restart continues the order: a second crash resubmits 5, 7, then 1.
  again->Taken(1);
  auto third = InflightLog::Attach(region(), kNum, kNum, 12);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->in_flight(), (std::vector<uint16_t>{5, 7, 1}));
}

TEST_F(InflightLogTest, UntrustworthyRegionsAreRefused) {
  ASSERT_TRUE(InflightLog::Attach(region(), kNum, kNum, 0).ok());
  // A ring larger than the region.
  EXPECT_FALSE(InflightLog::Attach(region(), kNum, kNum * 2, 0).ok());
  // A used index far ahead of the region's: more than a ring's worth of unlogged completions.
  EXPECT_FALSE(InflightLog::Attach(region(), kNum, kNum, kNum + 1).ok());
  // A batch list pointing outside the ring.
  region()->last_batch_head = kNum + 3;
  EXPECT_FALSE(InflightLog::Attach(region(), kNum, kNum, 1).ok());
  region()->last_batch_head = 0;
  // An unknown version.
  region()->version = 7;
  EXPECT_FALSE(InflightLog::Attach(region(), kNum, kNum, 0).ok());
}

TEST(InflightAreaTest, BadRequestsAndShortAreasAreRefused) {
  InflightPayload p{};
  EXPECT_FALSE(InflightArea::Create(0, 128, &p).ok());
  EXPECT_FALSE(InflightArea::Create(1, 100, &p).ok());  // not a power of two
  auto fd = InflightArea::Create(1, 128, &p);
  ASSERT_TRUE(fd.ok());
  InflightPayload big = p;
  big.num_queues = 4;  // the fd holds one queue's region only
  big.mmap_size = InflightQueueStride(128) * 4;
  int dup = ::dup(fd->get());
  EXPECT_FALSE(InflightArea::Map(big, UniqueFd(dup)).ok());
  InflightPayload small = p;
  small.mmap_size = 64;
  dup = ::dup(fd->get());
  EXPECT_FALSE(InflightArea::Map(small, UniqueFd(dup)).ok());
  InflightPayload wrap = p;
  wrap.mmap_offset = ~uint64_t{0} - 10;
  dup = ::dup(fd->get());
  EXPECT_FALSE(InflightArea::Map(wrap, UniqueFd(dup)).ok());
  EXPECT_TRUE(InflightArea::Map(p, std::move(*fd)).ok());
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
