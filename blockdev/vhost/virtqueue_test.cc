#include "blockdev/vhost/virtqueue.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "blockdev/vhost/test_guest.h"

namespace vdisk::blockdev::vhost {
namespace {

using testing::DriverRing;
using testing::FakeGuestRam;

class VirtqueueTest : public ::testing::Test {
 protected:
  static constexpr uint16_t kNum = 8;
  static constexpr uint64_t kRingBase = 0x1000;
  static constexpr uint64_t kBuf = 0x10000;  // data buffers from here

  VirtqueueTest() : ram_(1 << 20), ring_(&ram_, kRingBase, kNum) {
    MemRegion r = ram_.region();
    std::vector<UniqueFd> fds;
    fds.emplace_back(::dup(ram_.fd()));
    mem_ = std::move(GuestMemory::Map({&r, 1}, std::move(fds))).value();
  }

  SplitVirtqueue Queue(bool event_idx = false, bool indirect = true) {
    VringConfig c;
    c.num = kNum;
    c.desc_va = ram_.va_of(ring_.desc_gpa());
    c.avail_va = ram_.va_of(ring_.avail_gpa());
    c.used_va = ram_.va_of(ring_.used_gpa());
    c.event_idx = event_idx;
    c.indirect = indirect;
    return std::move(SplitVirtqueue::Create(*mem_, c)).value();
  }

  FakeGuestRam ram_;
  DriverRing ring_;
  std::unique_ptr<GuestMemory> mem_;
};

TEST_F(VirtqueueTest, ReadsAChainIntoGuestMemoryIovecs) {
  ring_.SetDesc(0, kBuf, 16, kDescFNext, 1);
  ring_.SetDesc(1, kBuf + 4096, 4096, kDescFNext | kDescFWrite, 2);
  ring_.SetDesc(2, kBuf + 8192, 1, kDescFWrite);
  ring_.Post(0);
  SplitVirtqueue q = Queue();
  ASSERT_EQ(*q.Available(), 1);
  uint16_t head = *q.PopHead();
  EXPECT_EQ(head, 0);
  DescChain c;
  ASSERT_TRUE(q.ReadChain(head, {}, &c).ok());
  ASSERT_EQ(c.readable.size(), 1u);
  ASSERT_EQ(c.writable.size(), 2u);
  EXPECT_EQ(c.readable_bytes, 16u);
  EXPECT_EQ(c.writable_bytes, 4097u);
  EXPECT_EQ(c.readable[0].iov_base, mem_->GpaToHost(kBuf, 16));
  EXPECT_EQ(*q.Available(), 0);

  q.AddUsed(head, 4097);
  EXPECT_TRUE(q.PublishUsed());
  EXPECT_EQ(ring_.used_idx(), 1);
  EXPECT_EQ(ring_.used(0).id, 0u);
  EXPECT_EQ(ring_.used(0).len, 4097u);
}

TEST_F(VirtqueueTest, IndirectTable) {
  uint64_t table = kBuf + 0x8000;
  VringDesc d[3] = {{kBuf, 16, kDescFNext, 1},
                    {kBuf + 4096, 512, kDescFNext | kDescFWrite, 2},
                    {kBuf + 8192, 1, kDescFWrite, 0}};
  std::memcpy(ram_.at(table), d, sizeof(d));
  ring_.SetDesc(3, table, sizeof(d), kDescFIndirect);
  ring_.Post(3);
  SplitVirtqueue q = Queue();
  DescChain c;
  ASSERT_TRUE(q.ReadChain(*q.PopHead(), {}, &c).ok());
  EXPECT_EQ(c.head, 3);
  EXPECT_EQ(c.readable_bytes, 16u);
  EXPECT_EQ(c.writable_bytes, 513u);

  SplitVirtqueue no_indirect = Queue(false, false);
  EXPECT_EQ(no_indirect.ReadChain(3, {}, &c).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VirtqueueTest, HostileChainsFailWithoutLeavingGuestMemory) {
  SplitVirtqueue q = Queue();
  DescChain c;
  // A loop: 0 -> 1 -> 0.
  ring_.SetDesc(0, kBuf, 16, kDescFNext, 1);
  ring_.SetDesc(1, kBuf, 16, kDescFNext, 0);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  // A buffer past the end of guest memory.
  ring_.SetDesc(0, ram_.size() - 8, 16, 0);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  // An address that wraps around 2^64.
  ring_.SetDesc(0, UINT64_MAX - 4, 16, 0);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  // next out of range.
  ring_.SetDesc(0, kBuf, 16, kDescFNext, kNum);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  // Readable after writable.
  ring_.SetDesc(0, kBuf, 16, kDescFWrite | kDescFNext, 1);
  ring_.SetDesc(1, kBuf, 16, 0);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  // Oversized: 3 x 512 KiB against a 1 MiB limit.
  ring_.SetDesc(0, kBuf, 512 << 10, kDescFNext, 1);
  ring_.SetDesc(1, kBuf, 512 << 10, kDescFNext, 2);
  ring_.SetDesc(2, kBuf, 512 << 10, 0);
  ChainLimits small;
  small.max_bytes = 1 << 20;
  EXPECT_EQ(q.ReadChain(0, small, &c).code(), absl::StatusCode::kInvalidArgument);
  // Too many iovecs.
  ChainLimits few;
  few.max_iovs = 2;
  EXPECT_EQ(q.ReadChain(0, few, &c).code(), absl::StatusCode::kInvalidArgument);
  // Indirect: nested, with NEXT, bad length, outside memory, looping inside the table.
  uint64_t table = kBuf + 0x8000;
  VringDesc nested[1] = {{table, 16, kDescFIndirect, 0}};
  std::memcpy(ram_.at(table), nested, sizeof(nested));
  ring_.SetDesc(0, table, 16, kDescFIndirect);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  ring_.SetDesc(0, table, 16, kDescFIndirect | kDescFNext, 1);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  ring_.SetDesc(0, table, 15, kDescFIndirect);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  ring_.SetDesc(0, ram_.size() - 16, 32, kDescFIndirect);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
  VringDesc loop[2] = {{kBuf, 16, kDescFNext, 1}, {kBuf, 16, kDescFNext, 0}};
  std::memcpy(ram_.at(table), loop, sizeof(loop));
  ring_.SetDesc(0, table, sizeof(loop), kDescFIndirect);
  EXPECT_EQ(q.ReadChain(0, {}, &c).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VirtqueueTest, CorruptRingIsReported) {
  SplitVirtqueue q = Queue();
  ring_.SetAvailIdx(kNum + 1);  // more entries than the ring holds
  EXPECT_EQ(q.Available().status().code(), absl::StatusCode::kFailedPrecondition);
  ring_.SetAvailIdx(0);
  ring_.Post(kNum);  // head out of range
  ASSERT_EQ(*q.Available(), 1);
  EXPECT_EQ(q.PopHead().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(VirtqueueTest, RingsOutsideGuestMemoryAreRefused) {
  VringConfig c;
  c.num = kNum;
  c.desc_va = ram_.va_of(ram_.size() - 64);  // table would run past the end
  c.avail_va = ram_.va_of(ring_.avail_gpa());
  c.used_va = ram_.va_of(ring_.used_gpa());
  EXPECT_EQ(SplitVirtqueue::Create(*mem_, c).status().code(), absl::StatusCode::kInvalidArgument);
  c.desc_va = ram_.va_of(ring_.desc_gpa()) + 2;  // misaligned
  EXPECT_EQ(SplitVirtqueue::Create(*mem_, c).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VirtqueueTest, EventIdxSuppressesNotifications) {
  SplitVirtqueue q = Queue(/*event_idx=*/true);
  ring_.SetDesc(0, kBuf, 1, kDescFWrite);
  ring_.SetDesc(1, kBuf, 1, kDescFWrite);
  ring_.Post(0);
  ring_.Post(1);
  ASSERT_EQ(*q.Available(), 2);
  ASSERT_TRUE(q.PopHead().ok());
  ASSERT_TRUE(q.PopHead().ok());
  EXPECT_FALSE(q.ArmKick());
  EXPECT_EQ(ring_.avail_event(), 2);  // kick me when you post entry 2
  ring_.SetUsedEvent(1);              // driver: interrupt once used idx passes 1
  q.AddUsed(0, 1);
  EXPECT_TRUE(q.PublishUsed());       // first notification is always sent
  q.AddUsed(1, 1);
  EXPECT_TRUE(q.PublishUsed());       // used idx 1 -> 2 crosses used_event 1
  ring_.SetUsedEvent(10);
  ring_.Post(0);
  ASSERT_TRUE(q.PopHead().ok());
  q.AddUsed(0, 1);
  EXPECT_FALSE(q.PublishUsed());      // 2 -> 3 does not reach 10
}

TEST_F(VirtqueueTest, NoInterruptFlagWithoutEventIdx) {
  SplitVirtqueue q = Queue();
  ring_.SetDesc(0, kBuf, 1, kDescFWrite);
  ring_.Post(0);
  ASSERT_TRUE(q.PopHead().ok());
  ring_.SetAvailFlags(kAvailFNoInterrupt);
  q.AddUsed(0, 1);
  EXPECT_FALSE(q.PublishUsed());
  EXPECT_FALSE(q.PublishUsed());  // nothing new
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
