// The vhost-user-blk export driven directly over its socket by a test front end (no QEMU): real
// io_uring file devices, real guest memory (memfd), hand-made and hostile descriptor chains.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "blockdev/uring/uring_device.h"
#include "blockdev/vhost/export.h"
#include "tests/vhost/export_fixture.h"
#include "tests/vhost/vhost_client.h"

namespace vdisk::blockdev::vhost {
namespace {

using testing::VhostClient;
namespace fs = std::filesystem;

constexpr uint64_t kDiskBytes = 16 << 20;

class VhostProtocolTest : public testing::ExportTest {
 protected:
  void StartExport(ExportOptions o = {}, bool read_only_device = false) {
    uring::FileDeviceOptions fo;
    fo.create = true;
    fo.create_size = kDiskBytes;
    fo.read_only = false;
    if (!fs::exists(image_)) {
      auto created = uring::OpenFileDevice(image_, fo);
      ASSERT_TRUE(created.ok()) << created.status();
    }
    fo.create = false;
    fo.read_only = read_only_device;
    auto dev = uring::OpenFileDevice(image_, fo);
    ASSERT_TRUE(dev.ok()) << dev.status();
    o.socket_path = socket_;
    if (o.serial.empty()) o.serial = "vdisk-test-serial";
    auto e = Export::Start(std::shared_ptr<Device>(std::move(*dev)), o);
    ASSERT_TRUE(e.ok()) << e.status();
    exp_ = std::move(*e);
  }

  void WriteFile(uint64_t off, const std::string& data) {
    int fd = ::open(image_.c_str(), O_WRONLY);
    EXPECT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)),
              static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  bool IsHole(uint64_t off, uint64_t len) {
    int fd = ::open(image_.c_str(), O_RDONLY);
    off_t data = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    ::close(fd);
    return data < 0 || static_cast<uint64_t>(data) >= off + len;
  }
};

TEST_F(VhostProtocolTest, NegotiatesAndReportsConfig) {
  ExportOptions o;
  o.num_queues = 2;
  StartExport(o);
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  auto f = c.GetU64(Request::kGetFeatures);
  ASSERT_TRUE(f.ok());
  for (int bit : {kFVersion1, kFProtocolFeatures, kBlkFFlush, kBlkFDiscard, kBlkFWriteZeroes,
                  kBlkFMq, kBlkFBlkSize, kBlkFSegMax, kFRingEventIdx, kFRingIndirectDesc}) {
    EXPECT_TRUE(*f & (uint64_t{1} << bit)) << "feature bit " << bit;
  }
  EXPECT_FALSE(*f & (uint64_t{1} << kBlkFRo));
  ASSERT_TRUE(c.Setup(1).ok());
  EXPECT_EQ(*c.GetU64(Request::kGetQueueNum), 2u);
  auto cfg = c.GetConfig(0, sizeof(BlkConfig));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->size(), sizeof(BlkConfig));
  BlkConfig bc;
  std::memcpy(&bc, cfg->data(), sizeof(bc));
  EXPECT_EQ(bc.capacity, kDiskBytes / 512);
  EXPECT_EQ(bc.num_queues, 2);
  EXPECT_GE(bc.blk_size, 512u);
  EXPECT_GT(bc.max_discard_sectors, 0u);
  EXPECT_EQ(bc.max_discard_seg, 1u);
  EXPECT_GT(bc.max_write_zeroes_sectors, 0u);
  EXPECT_EQ(bc.write_zeroes_may_unmap, 1);
  // A config range past the 256-byte space gets an empty answer, not a crash.
  auto bad = c.GetConfig(250, 100);
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->empty());
}

TEST_F(VhostProtocolTest, ReadWriteFlushGetIdDiscardWriteZeroes) {
  StartExport();
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  ASSERT_TRUE(c.Setup(1, /*event_idx=*/true).ok());
  const uint64_t s1 = VhostClient::kDataBase, s2 = s1 + (1 << 20), s3 = s2 + (1 << 20);

  // WRITE 64 KiB at 1 MiB.
  std::string data = Pattern(65536, 1);
  std::memcpy(c.ram().at(c.Layout(s1, 65536).data_gpa), data.data(), data.size());
  c.Submit(0, kBlkTOut, (1 << 20) / 512, s1, 65536, false);
  // FLUSH and GET_ID in the same batch.
  c.Submit(0, kBlkTFlush, 0, s2, 0, false);
  c.Submit(0, kBlkTGetId, 0, s3, 20, true);
  c.Kick(0);
  auto used = c.WaitUsed(0, 3);
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(c.StatusByte(s1, 65536), kBlkSOk);
  EXPECT_EQ(c.StatusByte(s2, 0), kBlkSOk);
  EXPECT_EQ(c.StatusByte(s3, 20), kBlkSOk);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(c.ram().at(c.Layout(s3, 20).data_gpa))),
            "vdisk-test-serial");
  EXPECT_EQ(ReadFile(1 << 20, 65536), data);

  // READ it back into guest memory.
  std::memset(c.ram().at(c.Layout(s1, 65536).data_gpa), 0, 65536);
  c.Submit(0, kBlkTIn, (1 << 20) / 512, s1, 65536, true);
  c.Kick(0);
  used = c.WaitUsed(0, 1);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 65536u + 1);
  EXPECT_EQ(c.StatusByte(s1, 65536), kBlkSOk);
  EXPECT_EQ(std::memcmp(c.ram().at(c.Layout(s1, 65536).data_gpa), data.data(), data.size()), 0);

  // DISCARD the first 32 KiB (a hole afterwards), WRITE_ZEROES the next 32 KiB.
  auto segment = [&](uint64_t scratch, uint64_t off, uint32_t len, uint32_t flags) {
    BlkDiscardWriteZeroes seg{off / 512, len / 512, flags};
    std::memcpy(c.ram().at(c.Layout(scratch, 16).data_gpa), &seg, sizeof(seg));
  };
  segment(s1, 1 << 20, 32768, 0);
  c.Submit(0, kBlkTDiscard, 0, s1, 16, false);
  segment(s2, (1 << 20) + 32768, 32768, 0);
  c.Submit(0, kBlkTWriteZeroes, 0, s2, 16, false);
  c.Kick(0);
  used = c.WaitUsed(0, 2);
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(c.StatusByte(s1, 16), kBlkSOk);
  EXPECT_EQ(c.StatusByte(s2, 16), kBlkSOk);
  EXPECT_EQ(ReadFile(1 << 20, 65536), std::string(65536, '\0'));
  EXPECT_TRUE(IsHole(1 << 20, 32768));

  // Discard with the unmap flag is UNSUPP by the spec; out-of-range I/O is IOERR.
  segment(s1, 0, 4096, kWriteZeroesFlagUnmap);
  c.Submit(0, kBlkTDiscard, 0, s1, 16, false);
  c.Submit(0, kBlkTIn, kDiskBytes / 512, s2, 4096, true);
  c.Submit(0, 99, 0, s3, 0, false);  // unknown type
  c.Kick(0);
  used = c.WaitUsed(0, 3);
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(c.StatusByte(s1, 16), kBlkSUnsupp);
  EXPECT_EQ(c.StatusByte(s2, 4096), kBlkSIoErr);
  EXPECT_EQ(c.StatusByte(s3, 0), kBlkSUnsupp);
  ExportStats st = exp_->stats();
  EXPECT_EQ(st.write_bytes, 65536u);
  EXPECT_EQ(st.read_bytes, 65536u);
  EXPECT_TRUE(st.connected);
}

TEST_F(VhostProtocolTest, UnalignedGuestBuffersGoThroughABounceBuffer) {
  StartExport();
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  ASSERT_TRUE(c.Setup(1).ok());
  // 8 KiB split into 3 descriptors at odd (but sector-sized) places.
  std::string data = Pattern(8192, 7);
  uint64_t hdr = VhostClient::kDataBase, st = hdr + 64;
  uint64_t a = hdr + 4096 + 512, b = hdr + 3 * 4096 + 100, d = hdr + 6 * 4096 + 1;
  std::memcpy(c.ram().at(a), data.data(), 1024);
  std::memcpy(c.ram().at(b), data.data() + 1024, 3072);
  std::memcpy(c.ram().at(d), data.data() + 4096, 4096);
  BlkOutHeader h{kBlkTOut, 0, 8};
  std::memcpy(c.ram().at(hdr), &h, sizeof(h));
  uint16_t head = c.Chain(0, {{hdr, 16, false}, {a, 1024, false}, {b, 3072, false},
                              {d, 4096, false}, {st, 1, true}});
  c.Post(0, head);
  c.Kick(0);
  ASSERT_EQ(c.WaitUsed(0, 1).size(), 1u);
  EXPECT_EQ(c.ram().at(st)[0], kBlkSOk);
  EXPECT_EQ(ReadFile(4096, 8192), data);
  // And read it back scattered the same way.
  std::memset(c.ram().at(a), 0, 1024);
  std::memset(c.ram().at(b), 0, 3072);
  std::memset(c.ram().at(d), 0, 4096);
  h.type = kBlkTIn;
  std::memcpy(c.ram().at(hdr), &h, sizeof(h));
  head = c.Chain(0, {{hdr, 16, false}, {a, 1024, true}, {b, 3072, true}, {d, 4096, true},
                     {st, 1, true}});
  c.Post(0, head);
  c.Kick(0);
  ASSERT_EQ(c.WaitUsed(0, 1).size(), 1u);
  EXPECT_EQ(c.ram().at(st)[0], kBlkSOk);
  EXPECT_EQ(std::memcmp(c.ram().at(a), data.data(), 1024), 0);
  EXPECT_EQ(std::memcmp(c.ram().at(b), data.data() + 1024, 3072), 0);
  EXPECT_EQ(std::memcmp(c.ram().at(d), data.data() + 4096, 4096), 0);
}

TEST_F(VhostProtocolTest, HostileDescriptorsFailTheRequestAndTheExportSurvives) {
  ExportOptions o;
  o.max_request_bytes = 1 << 20;
  StartExport(o);
  std::string before = Pattern(1 << 20, 3);
  WriteFile(0, before);
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  ASSERT_TRUE(c.Setup(1).ok());
  const uint64_t ram = c.ram().size();
  const uint64_t hdr = VhostClient::kDataBase, st = hdr + 64;
  BlkOutHeader w{kBlkTOut, 0, 0};
  std::memcpy(c.ram().at(hdr), &w, sizeof(w));
  c.ram().at(st)[0] = 0xff;

  // 1. A data buffer beyond guest memory: the chain fails before any I/O.
  c.Post(0, c.Chain(0, {{hdr, 16, false}, {ram + 4096, 4096, false}, {st, 1, true}}));
  // 2. A data buffer straddling the end of guest memory.
  c.Post(0, c.Chain(0, {{hdr, 16, false}, {ram - 2048, 4096, false}, {st, 1, true}}));
  // 3. An address that wraps past 2^64.
  c.Post(0, c.Chain(0, {{hdr, 16, false}, {UINT64_MAX - 1023, 4096, false}, {st, 1, true}}));
  c.Kick(0);
  auto used = c.WaitUsed(0, 3);
  ASSERT_EQ(used.size(), 3u);
  for (auto& u : used) EXPECT_EQ(u.len, 0u);  // no trustworthy status byte: length 0

  // 4. Oversized: 2 MiB of data against a 1 MiB limit -> IOERR, nothing written.
  c.ram().at(st)[0] = 0xff;
  c.Post(0, c.Chain(0, {{hdr, 16, false}, {hdr + 4096, 2 << 20, false}, {st, 1, true}}));
  // 5. A looping chain whose status byte comes first (readable after writable is refused too).
  uint16_t loop_head = c.Chain(0, {{st, 1, true}, {hdr, 16, false}});
  c.ring(0).ring.SetDesc(static_cast<uint16_t>(loop_head + 1), hdr, 16, kDescFNext, loop_head);
  c.Post(0, loop_head);
  // 6. Header only, no status byte at all.
  c.Post(0, c.Chain(0, {{hdr, 16, false}}));
  // 7. Write past the end of the disk.
  BlkOutHeader past{kBlkTOut, 0, kDiskBytes / 512 - 1};
  uint64_t hdr2 = hdr + (4 << 20), st2 = hdr2 + 64;
  std::memcpy(c.ram().at(hdr2), &past, sizeof(past));
  c.Post(0, c.Chain(0, {{hdr2, 16, false}, {hdr2 + 4096, 4096, false}, {st2, 1, true}}));
  // 8. Misaligned length (not a multiple of 512).
  uint64_t hdr3 = hdr + (5 << 20), st3 = hdr3 + 64;
  std::memcpy(c.ram().at(hdr3), &w, sizeof(w));
  c.Post(0, c.Chain(0, {{hdr3, 16, false}, {hdr3 + 4096, 1000, false}, {st3, 1, true}}));
  c.Kick(0);
  used = c.WaitUsed(0, 5);
  ASSERT_EQ(used.size(), 5u);
  EXPECT_EQ(c.ram().at(st2)[0], kBlkSIoErr);
  EXPECT_EQ(c.ram().at(st3)[0], kBlkSIoErr);
  EXPECT_EQ(used[2].len, 0u);  // header only
  EXPECT_EQ(ReadFile(0, 1 << 20), before);  // nothing was written anywhere
  EXPECT_GE(exp_->stats().bad_requests, 5u);

  // The queue still serves a good request.
  std::string data = Pattern(4096, 9);
  uint64_t s = hdr + (8 << 20);
  std::memcpy(c.ram().at(c.Layout(s, 4096).data_gpa), data.data(), 4096);
  c.Submit(0, kBlkTOut, 0, s, 4096, false);
  c.Kick(0);
  ASSERT_EQ(c.WaitUsed(0, 1).size(), 1u);
  EXPECT_EQ(c.StatusByte(s, 4096), kBlkSOk);
  EXPECT_EQ(ReadFile(0, 4096), data);

  // A corrupt ring (avail index far ahead) stops that queue, not the export.
  c.ring(0).ring.SetAvailIdx(static_cast<uint16_t>(c.ring(0).ring.avail_idx() + 1000));
  c.Kick(0);
  for (int i = 0; i < 100 && exp_->stats().broken_queues == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(exp_->stats().broken_queues, 1u);
  // A bad memory table is refused (fd count mismatch) without dropping the connection.
  MemTable t{};
  t.nregions = 2;
  t.regions[0] = c.ram().region();
  t.regions[1] = c.ram().region();
  auto ack = c.SetAck(Request::kSetMemTable, t, {c.ram().fd()});
  ASSERT_TRUE(ack.ok());
  EXPECT_NE(*ack, 0u);
  // Garbage: an oversized message drops this connection only.
  MsgHeader junk{5, kVersion, 1 << 20};
  ASSERT_EQ(::send(c.sock(), &junk, sizeof(junk), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(junk)));
  c.Close();

  // A new front end gets a clean session.
  VhostClient c2;
  ASSERT_TRUE(c2.Connect(socket_).ok());
  ASSERT_TRUE(c2.Setup(1).ok());
  uint64_t s2 = VhostClient::kDataBase;
  c2.Submit(0, kBlkTIn, 0, s2, 4096, true);
  c2.Kick(0);
  ASSERT_EQ(c2.WaitUsed(0, 1).size(), 1u);
  EXPECT_EQ(c2.StatusByte(s2, 4096), kBlkSOk);
  EXPECT_EQ(std::memcmp(c2.ram().at(c2.Layout(s2, 4096).data_gpa), data.data(), 4096), 0);
  EXPECT_GE(exp_->stats().connections, 2u);
}

TEST_F(VhostProtocolTest, ReadOnlyExportRejectsWrites) {
  std::string before = Pattern(8192, 5);
  {
    int fd = ::open(image_.c_str(), O_CREAT | O_RDWR, 0644);
    ASSERT_EQ(::ftruncate(fd, kDiskBytes), 0);
    ::close(fd);
  }
  WriteFile(0, before);
  ExportOptions o;
  o.read_only = true;
  StartExport(o);
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  auto f = c.GetU64(Request::kGetFeatures);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(*f & (uint64_t{1} << kBlkFRo));
  EXPECT_FALSE(*f & (uint64_t{1} << kBlkFDiscard));
  c.Close();
  VhostClient c2;
  ASSERT_TRUE(c2.Connect(socket_).ok());
  ASSERT_TRUE(c2.Setup(1).ok());
  uint64_t s1 = VhostClient::kDataBase, s2 = s1 + (1 << 20), s3 = s2 + (1 << 20);
  std::memset(c2.ram().at(c2.Layout(s1, 4096).data_gpa), 0x77, 4096);
  c2.Submit(0, kBlkTOut, 0, s1, 4096, false);
  BlkDiscardWriteZeroes seg{0, 8, 0};
  std::memcpy(c2.ram().at(c2.Layout(s2, 16).data_gpa), &seg, sizeof(seg));
  c2.Submit(0, kBlkTWriteZeroes, 0, s2, 16, false);
  c2.Submit(0, kBlkTIn, 0, s3, 8192, true);
  c2.Kick(0);
  ASSERT_EQ(c2.WaitUsed(0, 3).size(), 3u);
  EXPECT_EQ(c2.StatusByte(s1, 4096), kBlkSIoErr);
  EXPECT_EQ(c2.StatusByte(s2, 16), kBlkSUnsupp);
  EXPECT_EQ(c2.StatusByte(s3, 8192), kBlkSOk);
  EXPECT_EQ(std::memcmp(c2.ram().at(c2.Layout(s3, 8192).data_gpa), before.data(), 8192), 0);
  EXPECT_EQ(ReadFile(0, 8192), before);
}

TEST_F(VhostProtocolTest, DisconnectCompletesInFlightAndRingStateCarriesOver) {
  ExportOptions o;
  o.num_queues = 2;
  StartExport(o);
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  ASSERT_TRUE(c.Setup(2).ok());
  // Both queues at once.
  std::vector<uint64_t> scratch;
  for (unsigned q = 0; q < 2; q++) {
    for (int i = 0; i < 8; i++) {
      uint64_t s = VhostClient::kDataBase + (uint64_t{q * 8 + i} << 20);
      scratch.push_back(s);
      std::memset(c.ram().at(c.Layout(s, 65536).data_gpa), 'a' + q * 8 + i, 65536);
      c.Submit(q, kBlkTOut, uint64_t{q * 8 + i} * 128, s, 65536, false);
    }
    c.Kick(q);
  }
  // Once its 8 requests are answered, GET_VRING_BASE stops ring 0 and reports 8 consumed.
  // (Sent right after the kick it may legitimately win the race and report 0: heads not yet
  // taken stay in the ring for the next start, as with any vhost-user back end.)
  EXPECT_EQ(c.WaitUsed(0, 8).size(), 8u);
  auto base0 = c.GetVringBase(0);
  ASSERT_TRUE(base0.ok());
  EXPECT_EQ(*base0, 8);
  EXPECT_EQ(c.WaitUsed(1, 8).size(), 8u);
  for (unsigned i = 0; i < 16; i++) {
    EXPECT_EQ(c.StatusByte(scratch[i], 65536), kBlkSOk);
    EXPECT_EQ(ReadFile(uint64_t{i} * 65536, 65536), std::string(65536, static_cast<char>('a' + i)));
  }
  // Queue more on queue 1 and drop the connection right away: the export must not crash, and a
  // new front end (QEMU restarted) works.
  for (int i = 0; i < 8; i++) {
    c.Submit(1, kBlkTIn, 0, scratch[8 + i], 65536, true);
  }
  c.Kick(1);
  c.Close();
  for (int i = 0; i < 100 && exp_->stats().connected; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(exp_->stats().connected);
  VhostClient c2;
  ASSERT_TRUE(c2.Connect(socket_).ok());
  ASSERT_TRUE(c2.Setup(2).ok());
  uint64_t s = VhostClient::kDataBase;
  c2.Submit(1, kBlkTIn, 128, s, 65536, true);
  c2.Kick(1);
  ASSERT_EQ(c2.WaitUsed(1, 1).size(), 1u);
  EXPECT_EQ(c2.StatusByte(s, 65536), kBlkSOk);
  EXPECT_EQ(c2.ram().at(c2.Layout(s, 65536).data_gpa)[100], 'b');
}

TEST_F(VhostProtocolTest, ResizeNotifiesTheFrontEnd) {
  StartExport();
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  ASSERT_TRUE(c.Setup(1, false, /*backend_channel=*/true).ok());
  ASSERT_EQ(::truncate(image_.c_str(), 2 * kDiskBytes), 0);
  // The io_uring file engine captures the size at open: hand the export the reopened volume.
  auto reopened = uring::OpenFileDevice(image_, {});
  ASSERT_TRUE(reopened.ok());
  auto size = exp_->Resize(std::shared_ptr<Device>(std::move(*reopened)));
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 2 * kDiskBytes);
  EXPECT_EQ(c.NextBackendRequest(2000), static_cast<int>(BackendRequest::kConfigChange));
  auto cfg = c.GetConfig(0, 8);
  ASSERT_TRUE(cfg.ok());
  uint64_t cap;
  std::memcpy(&cap, cfg->data(), 8);
  EXPECT_EQ(cap, 2 * kDiskBytes / 512);
  // I/O in the new space works.
  uint64_t s = VhostClient::kDataBase;
  std::memset(c.ram().at(c.Layout(s, 4096).data_gpa), 0x42, 4096);
  c.Submit(0, kBlkTOut, (2 * kDiskBytes - 4096) / 512, s, 4096, false);
  c.Kick(0);
  ASSERT_EQ(c.WaitUsed(0, 1).size(), 1u);
  EXPECT_EQ(c.StatusByte(s, 4096), kBlkSOk);
  EXPECT_EQ(ReadFile(2 * kDiskBytes - 4096, 4096), std::string(4096, '\x42'));
  // Shrinking is refused.
  ASSERT_EQ(::truncate(image_.c_str(), kDiskBytes), 0);
  auto small = uring::OpenFileDevice(image_, {});
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(exp_->Resize(std::shared_ptr<Device>(std::move(*small))).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(VhostProtocolTest, StopRemovesTheSocketAndRejectsBadOptions) {
  StartExport();
  EXPECT_TRUE(fs::exists(socket_));
  exp_->Stop();
  EXPECT_FALSE(fs::exists(socket_));
  auto dev = uring::OpenFileDevice(image_, {});
  ASSERT_TRUE(dev.ok());
  std::shared_ptr<Device> d(std::move(*dev));
  ExportOptions o;
  o.socket_path = socket_;
  o.num_queues = 0;
  EXPECT_EQ(Export::Start(d, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.num_queues = 1;
  o.serial = std::string(21, 'x');
  EXPECT_EQ(Export::Start(d, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.serial.clear();
  o.socket_path = dir_ + "/" + std::string(120, 's');
  EXPECT_EQ(Export::Start(d, o).status().code(), absl::StatusCode::kInvalidArgument);
  // A regular file where the socket should go is never replaced.
  o.socket_path = image_;
  EXPECT_EQ(Export::Start(d, o).status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
