// BlkProcessor over a real file Device: large reads/writes made of scattered 4 KiB guest pages
// are split into parallel IoQueue operations (when the IoQueue has room) and still land at the
// right place; without room they go as one operation.
#include "blockdev/vhost/blk_processor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "blockdev/uring/uring_device.h"
#include "blockdev/vhost/test_guest.h"

namespace vdisk::blockdev::vhost {
namespace {

using testing::DriverRing;
using testing::FakeGuestRam;

constexpr uint16_t kNum = 8;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kTable = 0x10000;   // indirect descriptor table
constexpr uint64_t kHeader = 0x20000;  // request header, status byte after it
constexpr uint64_t kData = 1 << 20;    // data pages from here (2 MiB of them)
constexpr uint64_t kRequest = 1 << 20; // 1 MiB requests: 256 guest pages

class BlkProcessorTest : public ::testing::Test {
 protected:
  BlkProcessorTest() : ram_(4 << 20), ring_(&ram_, kRingBase, kNum) {
    MemRegion r = ram_.region();
    std::vector<UniqueFd> fds;
    fds.emplace_back(::dup(ram_.fd()));
    mem_ = std::move(GuestMemory::Map({&r, 1}, std::move(fds))).value();
    char tmpl[] = "/tmp/vdisk-blk-processor-XXXXXX";
    int fd = ::mkstemp(tmpl);
    path_ = tmpl;
    EXPECT_EQ(::ftruncate(fd, 4 << 20), 0);
    ::close(fd);
    dev_ = std::move(uring::OpenFileDevice(path_)).value();
    target_.device = dev_.get();
    target_.block_size = dev_->block_size();
    target_.buffer_alignment = dev_->buffer_alignment();
    target_.capacity_bytes = dev_->size();
  }
  ~BlkProcessorTest() override { ::unlink(path_.c_str()); }

  SplitVirtqueue Queue(uint16_t last_avail_idx) {
    VringConfig c;
    c.last_avail_idx = last_avail_idx;
    c.num = kNum;
    c.desc_va = ram_.va_of(ring_.desc_gpa());
    c.avail_va = ram_.va_of(ring_.avail_gpa());
    c.used_va = ram_.va_of(ring_.used_gpa());
    c.indirect = true;
    return std::move(SplitVirtqueue::Create(*mem_, c)).value();
  }

  // Posts one 1 MiB read or write at `sector` whose data pages are the 256 pages from `data`
  // in reverse order (page i of the request is guest page 255 - i), through an indirect table.
  void Post(uint32_t type, uint64_t sector, uint64_t data) {
    BlkOutHeader hdr{type, 0, sector};
    std::memcpy(ram_.at(kHeader), &hdr, sizeof(hdr));
    const uint16_t pages = kRequest / 4096;
    const uint16_t data_flags = type == kBlkTIn ? kDescFWrite : 0;
    auto put = [&](uint16_t i, uint64_t addr, uint32_t len, uint16_t flags) {
      VringDesc d{addr, len, static_cast<uint16_t>(flags), static_cast<uint16_t>(i + 1)};
      std::memcpy(ram_.at(kTable + 16ull * i), &d, sizeof(d));
    };
    put(0, kHeader, sizeof(hdr), kDescFNext);
    for (uint16_t p = 0; p < pages; p++)
      put(1 + p, data + 4096ull * (pages - 1 - p), 4096, kDescFNext | data_flags);
    put(1 + pages, kHeader + 64, 1, kDescFWrite);
    ring_.SetDesc(0, kTable, 16u * (pages + 2), kDescFIndirect);
    ring_.Post(0);
  }

  // Runs the request posted last to completion; returns its status byte.
  uint8_t Run(IoQueue* io) {
    SplitVirtqueue vq = Queue(static_cast<uint16_t>(ring_.avail_idx() - 1));
    BlkProcessor proc(&target_, 0, &vq, io, ChainLimits{});
    ram_.at(kHeader + 64)[0] = 0xff;
    EXPECT_TRUE(proc.Process().ok());
    while (proc.in_flight() > 0) EXPECT_TRUE(io->poll(1, -1).ok());
    proc.Publish();
    return ram_.at(kHeader + 64)[0];
  }

  // The request's bytes as the device sees them (guest pages in reverse order).
  std::string RequestBytes(uint64_t data) {
    std::string out;
    for (int p = kRequest / 4096 - 1; p >= 0; p--)
      out.append(reinterpret_cast<char*>(ram_.at(data + 4096ull * p)), 4096);
    return out;
  }

  std::string FileBytes(uint64_t offset, size_t len) {
    std::string out(len, '\0');
    FILE* f = std::fopen(path_.c_str(), "rb");
    std::fseek(f, static_cast<long>(offset), SEEK_SET);
    EXPECT_EQ(std::fread(out.data(), 1, len, f), len);
    std::fclose(f);
    return out;
  }

  FakeGuestRam ram_;
  DriverRing ring_;
  std::unique_ptr<GuestMemory> mem_;
  std::string path_;
  std::unique_ptr<Device> dev_;
  BlkTarget target_;
};

TEST_F(BlkProcessorTest, LargeRequestsAreSplitAndLandInPlace) {
  for (uint64_t i = 0; i < kRequest; i++) ram_.at(kData)[i] = static_cast<uint8_t>(i * 7 + i / 4096);
  auto io = std::move(dev_->open_queue(BlkProcessor::IoDepthFor(kNum))).value();
  Post(kBlkTOut, (1 << 20) / 512, kData);
  ASSERT_EQ(Run(io.get()), kBlkSOk);
  EXPECT_EQ(target_.stats.split_requests.load(), 1u);
  const std::string want = RequestBytes(kData);
  EXPECT_TRUE(FileBytes(1 << 20, kRequest) == want);

  Post(kBlkTIn, (1 << 20) / 512, kData + kRequest);
  ASSERT_EQ(Run(io.get()), kBlkSOk);
  EXPECT_EQ(target_.stats.split_requests.load(), 2u);
  EXPECT_TRUE(RequestBytes(kData + kRequest) == want);
  EXPECT_EQ(target_.stats.read_bytes.load(), kRequest);
  EXPECT_EQ(target_.stats.write_bytes.load(), kRequest);
}

TEST_F(BlkProcessorTest, WithoutRoomTheRequestGoesWhole) {
  for (uint64_t i = 0; i < kRequest; i++) ram_.at(kData)[i] = static_cast<uint8_t>(i * 13 + 1);
  auto io = std::move(dev_->open_queue(kNum)).value();  // no slack beyond one op per entry
  Post(kBlkTOut, 0, kData);
  ASSERT_EQ(Run(io.get()), kBlkSOk);
  Post(kBlkTIn, 0, kData + kRequest);
  ASSERT_EQ(Run(io.get()), kBlkSOk);
  EXPECT_EQ(target_.stats.split_requests.load(), 0u);
  EXPECT_TRUE(RequestBytes(kData + kRequest) == RequestBytes(kData));
  EXPECT_TRUE(FileBytes(0, kRequest) == RequestBytes(kData));
}

TEST_F(BlkProcessorTest, AFailedPieceFailsTheRequest) {
  // A read-only device refuses writes per operation: every piece fails, the request is IOERR
  // exactly once and the processor is idle afterwards.
  dev_ = std::move(uring::OpenFileDevice(path_, {.read_only = true})).value();
  target_.device = dev_.get();
  auto io = std::move(dev_->open_queue(BlkProcessor::IoDepthFor(kNum))).value();
  Post(kBlkTOut, 0, kData);
  ASSERT_EQ(Run(io.get()), kBlkSIoErr);
  EXPECT_EQ(target_.stats.split_requests.load(), 1u);
  EXPECT_EQ(target_.stats.io_errors.load(), 1u);
  EXPECT_EQ(ring_.used_idx(), 1);
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
