// The libiscsi Device against the real tgtd of the `tgt` fixture: bytes checked through QEMU's
// own iSCSI driver (an independent client), many commands in flight, UNMAP / WRITE SAME / GET LBA
// STATUS seen in the backing file, exact codes for bad input, and a LUN re-created under an open
// queue (the pool's online expand).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/iscsi/iscsi_device.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "common/fs.h"
#include "common/subprocess.h"
#include "tests/iscsi/tgt_env.h"
#include "tests/pool/pool_test_util.h"
#include "tests/pool/status_macros.h"

namespace vdisk::blockdev::iscsi {
namespace {

using absl::StatusCode;
using vdisk::pooltest::CheckPattern;
using vdisk::pooltest::CheckZeroes;
using vdisk::pooltest::WritePattern;
constexpr uint64_t kMiB = 1 << 20;


class IscsiDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadTgtEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    token_ = vdisk::testing::UniqueToken();
    // acl: open, so that the URI opens and QEMU reach the LUNs with any initiator name.
    auto pool = vdisk::testing::OpenTestPool(vdisk::testing::IscsiPoolConfig(env_, "dev", token_, {{"acl", "open"}}));
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *pool;
  }
  void TearDown() override {
    if (!pool_) return;
    auto vols = pool_->list_volumes();
    if (vols.ok())
      for (const auto& v : *vols) (void)pool_->delete_volume(v.id);
    pool_.reset();
    (void)fs::RemoveAll(env_.backing + "/" + token_);
  }
  Volume MakeVolume(const std::string& name, uint64_t size) {
    VolumeRequest r;
    r.name = name;
    r.size_bytes = size;
    auto v = pool_->create_volume(r);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : Volume{};
  }
  std::string Uri(const Volume& v) const { return absl::StrCat("iscsi://", env_.portal, "/", v.context.at("iscsi.iqn"), "/1"); }
  std::string Backing(const Volume& v) const { return env_.backing + "/" + token_ + "/volumes/" + v.id + ".img"; }
  uint64_t AllocatedOnTarget(const Volume& v) const {
    struct stat st;
    return ::stat(Backing(v).c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
  }

  vdisk::testing::TgtEnv env_;
  std::string token_;
  std::shared_ptr<Pool> pool_;
};

TEST_F(IscsiDeviceTest, BytesMatchThroughQemusIscsiDriverAtDepth) {
  Volume v = MakeVolume("bytes", 64 * kMiB);
  auto dev = OpenDeviceUri(Uri(v), false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->size(), 64 * kMiB);
  EXPECT_EQ((*dev)->block_size(), 512u);
  // 16 writes of 1 MiB queued at once: all in flight before the first completes is reaped.
  {
    auto q = (*dev)->open_queue(32);
    ASSERT_TRUE(q.ok()) << q.status();
    AlignedBuffer buf(16 * kMiB);
    for (size_t i = 0; i < buf.size(); ++i) buf.data()[i] = static_cast<std::byte>((i * 131 + i / 4096) & 0xff);
    std::atomic<int> ok{0};
    for (int i = 0; i < 16; ++i)
      (*q)->write(8 * kMiB + i * kMiB, buf.span().subspan(i * kMiB, kMiB), [&](Status s) {
        EXPECT_TRUE(s.ok()) << s;
        ++ok;
      });
    VT_ASSERT_OK((*q)->submit());
    EXPECT_EQ((*q)->in_flight(), 16u);
    VT_ASSERT_OK((*q)->drain());
    EXPECT_EQ(ok.load(), 16);
    bool flushed = false;
    (*q)->flush([&](Status s) { flushed = s.ok(); });
    VT_ASSERT_OK((*q)->drain());
    EXPECT_TRUE(flushed);
  }
  // QEMU reads it back through its own libiscsi driver...
  const std::string out = "/tmp/vdisk-iscsi-dev-" + token_ + ".img";
  auto conv = RunProcess({"qemu-img", "convert", "-f", "raw", "-O", "raw", Uri(v), out});
  ASSERT_TRUE(conv.ok() && conv->ok()) << (conv.ok() ? conv->err : conv.status().ToString());
  {
    std::ifstream in(out, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(all.size(), 64 * kMiB);
    for (size_t i = 0; i < 16 * kMiB; i += 4093)
      ASSERT_EQ(static_cast<uint8_t>(all[8 * kMiB + i]), static_cast<uint8_t>((i * 131 + i / 4096) & 0xff)) << i;
    EXPECT_EQ(all.substr(0, 8 * kMiB), std::string(8 * kMiB, '\0'));
  }
  ::unlink(out.c_str());
  // ...and writes through it, which we read.
  auto w = RunProcess({"qemu-io", "-f", "raw", "-c", "write -P 0xab 40M 1M", Uri(v)});
  ASSERT_TRUE(w.ok() && w->ok()) << (w.ok() ? w->err : w.status().ToString());
  AlignedBuffer got(kMiB);
  VT_ASSERT_OK(ReadAt(**dev, 40 * kMiB, got.span()));
  for (size_t i = 0; i < kMiB; ++i) ASSERT_EQ(static_cast<uint8_t>(got.data()[i]), 0xab) << i;
}

TEST_F(IscsiDeviceTest, DiscardAndWriteZeroesDeallocateAndGetLbaStatusSeesIt) {
  Volume v = MakeVolume("thin", 32 * kMiB);
  auto dev = pool_->open_volume(v.id, false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  VT_ASSERT_OK(WritePattern(**dev, 0, 8 * kMiB, 5));
  VT_ASSERT_OK(WritePattern(**dev, 20 * kMiB, kMiB, 6));
  VT_ASSERT_OK(Flush(**dev));
  auto alloc = (*dev)->allocated(0, 32 * kMiB);
  ASSERT_TRUE(alloc.ok()) << alloc.status();
  EXPECT_EQ(*alloc, (ExtentList{{0, 8 * kMiB}, {20 * kMiB, kMiB}}));
  const uint64_t before = AllocatedOnTarget(v);
  EXPECT_GE(before, 9 * kMiB);
  VT_ASSERT_OK(Discard(**dev, 2 * kMiB, 2 * kMiB));
  VT_ASSERT_OK(WriteZeroes(**dev, 20 * kMiB, kMiB));
  EXPECT_TRUE(CheckZeroes(**dev, 2 * kMiB, 2 * kMiB).ok());
  EXPECT_TRUE(CheckZeroes(**dev, 20 * kMiB, kMiB).ok());
  EXPECT_TRUE(CheckPattern(**dev, 0, 2 * kMiB, 5).ok());
  EXPECT_LE(AllocatedOnTarget(v), before - 3 * kMiB) << "UNMAP / WRITE SAME did not punch holes on the target";
  alloc = (*dev)->allocated(0, 32 * kMiB);
  ASSERT_TRUE(alloc.ok());
  EXPECT_EQ(*alloc, (ExtentList{{0, 2 * kMiB}, {4 * kMiB, 4 * kMiB}}));
  auto inner = (*dev)->allocated(kMiB, 2 * kMiB);
  ASSERT_TRUE(inner.ok());
  EXPECT_EQ(*inner, (ExtentList{{kMiB, kMiB}}));
}

TEST_F(IscsiDeviceTest, BadInputGetsExactCodes) {
  Volume v = MakeVolume("codes", 8 * kMiB);
  const std::string iqn = v.context.at("iscsi.iqn");
  // Unreachable portal: nothing listens on port 1.
  EXPECT_EQ(OpenDeviceUri(absl::StrCat("iscsi://127.0.0.1:1/", iqn, "/1"), true).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(OpenDeviceUri(absl::StrCat("iscsi://", env_.portal, "/", iqn, "x/1"), true).status().code(),
            StatusCode::kNotFound)
      << "unknown target";
  EXPECT_EQ(OpenDeviceUri(absl::StrCat("iscsi://", env_.portal, "/", iqn, "/7"), true).status().code(),
            StatusCode::kNotFound)
      << "unknown LUN";
  EXPECT_EQ(OpenDeviceUri(absl::StrCat("iscsi://", env_.portal, "/", iqn, "/1?chap_user=u"), true).status().code(),
            StatusCode::kInvalidArgument);
  auto dev = OpenDeviceUri(Uri(v), true);
  ASSERT_TRUE(dev.ok()) << dev.status();
  AlignedBuffer buf(4096);
  EXPECT_EQ(ReadAt(**dev, 8 * kMiB, buf.span()).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(ReadAt(**dev, 100, buf.span()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteAt(**dev, 0, buf.span()).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*dev)->allocated(4 * kMiB, 8 * kMiB).status().code(), StatusCode::kOutOfRange);
}

TEST_F(IscsiDeviceTest, ChapIsRequiredAndChecked) {
  const std::string password = "chap-" + token_ + "-secret";
  auto chap_pool = vdisk::testing::OpenTestPool(
      vdisk::testing::IscsiPoolConfig(env_, "chap", token_ + "c", {{"acl", "open"}}),
      {{"node.session.auth.username", "vdisk-" + token_}, {"node.session.auth.password", password}});
  ASSERT_TRUE(chap_pool.ok()) << chap_pool.status();
  VolumeRequest r;
  r.name = "chap";
  r.size_bytes = 4 * kMiB;
  auto v = (*chap_pool)->create_volume(r);
  ASSERT_TRUE(v.ok()) << v.status();
  {
    auto through_pool = (*chap_pool)->open_volume(v->id, false);  // the pool logs in with the volume's CHAP
    ASSERT_TRUE(through_pool.ok()) << through_pool.status();
    VT_ASSERT_OK(WritePattern(**through_pool, 0, kMiB, 9));
  }
  const std::string uri = absl::StrCat("iscsi://", env_.portal, "/", v->context.at("iscsi.iqn"), "/1");
  EXPECT_EQ(OpenDeviceUri(uri, true).status().code(), StatusCode::kPermissionDenied) << "no credentials";
  const std::string secret_file = "/tmp/vdisk-chap-" + token_;
  VT_ASSERT_OK(fs::WriteFileAtomic(secret_file, "wrong-password\n", 0600));
  auto wrong = OpenDeviceUri(absl::StrCat(uri, "?chap_user=vdisk-", token_, "&chap_secret_file=", secret_file), true);
  EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(wrong.status().message()).find("wrong-password"), std::string::npos);
  VT_ASSERT_OK(fs::WriteFileAtomic(secret_file, password + "\n", 0600));
  auto right = OpenDeviceUri(absl::StrCat(uri, "?chap_user=vdisk-", token_, "&chap_secret_file=", secret_file), true);
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_TRUE(CheckPattern(**right, 0, kMiB, 9).ok());
  right->reset();
  ::unlink(secret_file.c_str());
  VT_ASSERT_OK((*chap_pool)->delete_volume(v->id));
  (void)fs::RemoveAll(env_.backing + "/" + token_ + "c");
}

TEST_F(IscsiDeviceTest, GrowingTheLunUnderAnOpenQueueKeepsItWorking) {
  Volume v = MakeVolume("grow", 16 * kMiB);
  auto dev = pool_->open_volume(v.id, false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  auto q = (*dev)->open_queue(4);
  ASSERT_TRUE(q.ok());
  // I/O keeps going while the pool deletes and re-adds the LUN (tgt cannot resize in place).
  std::atomic<bool> stop{false};
  std::atomic<int> done{0}, failed{0};
  std::thread io([&] {
    AlignedBuffer buf(64 * 1024);
    while (!stop) {
      (*q)->write(static_cast<uint64_t>(done % 200) * 64 * 1024, buf.span(), [&](Status s) {
        if (!s.ok()) {
          ++failed;
          ADD_FAILURE() << s;
        }
      });
      if (!(*q)->drain().ok()) ++failed;
      ++done;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto grown = pool_->expand_volume(v.id, 48 * kMiB);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  io.join();
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(done.load(), 10);
  auto fresh = pool_->open_volume(v.id, true);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->size(), 48 * kMiB) << "a new open sees the new capacity";
}

}  // namespace
}  // namespace vdisk::blockdev::iscsi
