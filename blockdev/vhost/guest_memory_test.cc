#include "blockdev/vhost/guest_memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "blockdev/vhost/test_guest.h"

namespace vdisk::blockdev::vhost {
namespace {

using testing::FakeGuestRam;

std::vector<UniqueFd> Dup(std::initializer_list<int> fds) {
  std::vector<UniqueFd> out;
  for (int fd : fds) out.emplace_back(::dup(fd));
  return out;
}

TEST(GuestMemory, TranslatesInsideRegionsOnly) {
  FakeGuestRam low(1 << 20, 0, 0x10000000);
  FakeGuestRam high(1 << 20, 4ull << 30, 0x20000000);
  MemRegion regions[] = {low.region(), high.region()};
  auto mem = GuestMemory::Map(regions, Dup({low.fd(), high.fd()}));
  ASSERT_TRUE(mem.ok()) << mem.status();
  GuestMemory& m = **mem;

  low.at(100)[0] = 0x5a;
  uint8_t* p = m.GpaToHost(100, 1);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 0x5a);  // same shared pages as the "guest"
  EXPECT_NE(m.GpaToHost((1 << 20) - 8, 8), nullptr);
  EXPECT_EQ(m.GpaToHost((1 << 20) - 8, 9), nullptr);   // runs off the region
  EXPECT_EQ(m.GpaToHost(1 << 20, 1), nullptr);         // gap between regions
  EXPECT_EQ(m.GpaToHost(UINT64_MAX - 2, 16), nullptr); // wraps around
  EXPECT_NE(m.GpaToHost(4ull << 30, 4096), nullptr);
  EXPECT_EQ(m.VaToHost(0x10000000 + 100, 1), p);
  EXPECT_EQ(m.VaToHost(0x20000000 + (1 << 20), 1), nullptr);
  EXPECT_EQ(m.VaToHost(0x0fffffff, 2), nullptr);
}

TEST(GuestMemory, IovecsSplitAcrossAdjacentRegionsAndRespectLimit) {
  // Two regions adjacent in guest-physical space but separate mappings.
  FakeGuestRam a(1 << 20, 0, 0x10000000);
  FakeGuestRam b(1 << 20, 1 << 20, 0x30000000);
  MemRegion regions[] = {a.region(), b.region()};
  auto mem = GuestMemory::Map(regions, Dup({a.fd(), b.fd()}));
  ASSERT_TRUE(mem.ok());
  std::vector<iovec> iov;
  ASSERT_TRUE((*mem)->GpaToIovecs((1 << 20) - 512, 1024, &iov, 8));
  ASSERT_EQ(iov.size(), 2u);
  EXPECT_EQ(iov[0].iov_len, 512u);
  EXPECT_EQ(iov[1].iov_len, 512u);
  std::vector<iovec> limited;
  EXPECT_FALSE((*mem)->GpaToIovecs((1 << 20) - 512, 1024, &limited, 1));
  EXPECT_TRUE(limited.empty());
  std::vector<iovec> outside;
  EXPECT_FALSE((*mem)->GpaToIovecs((2 << 20) - 512, 1024, &outside, 8));
  EXPECT_TRUE(outside.empty());
}

TEST(GuestMemory, RejectsMalformedTables) {
  FakeGuestRam a(1 << 20, 0, 0x10000000);
  MemRegion r = a.region();
  EXPECT_EQ(GuestMemory::Map({&r, 1}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  MemRegion overlap[] = {a.region(), a.region()};
  EXPECT_EQ(GuestMemory::Map(overlap, Dup({a.fd(), a.fd()})).status().code(),
            absl::StatusCode::kInvalidArgument);
  MemRegion empty = r;
  empty.memory_size = 0;
  EXPECT_EQ(GuestMemory::Map({&empty, 1}, Dup({a.fd()})).status().code(),
            absl::StatusCode::kInvalidArgument);
  MemRegion wrap = r;
  wrap.guest_phys_addr = UINT64_MAX - 10;
  EXPECT_EQ(GuestMemory::Map({&wrap, 1}, Dup({a.fd()})).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A region larger than the fd maps, but the test only checks the table itself; an mmap
  // offset past the file would fault on access, so huge offsets are refused up front.
  MemRegion huge = r;
  huge.mmap_offset = 1ull << 50;
  EXPECT_FALSE(GuestMemory::Map({&huge, 1}, Dup({a.fd()})).ok());
}

}  // namespace
}  // namespace vdisk::blockdev::vhost

namespace vdisk::blockdev::vhost {
namespace {

TEST(GuestMemory, RejectsRegionBeyondItsFile) {
  testing::FakeGuestRam a(1 << 20, 0, 0x10000000);
  MemRegion r = a.region();
  r.memory_size = 2 << 20;  // the memfd holds only 1 MiB: touching the rest would SIGBUS
  std::vector<UniqueFd> fds;
  fds.emplace_back(::dup(a.fd()));
  EXPECT_EQ(GuestMemory::Map({&r, 1}, std::move(fds)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
