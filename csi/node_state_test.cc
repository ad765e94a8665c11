#include "csi/node_state.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"

namespace vdisk::csi {
namespace {

class NodeStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-node-state-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)fs::RemoveAll(dir_); }
  std::string dir_;
};

VolumeRecord Sample() {
  VolumeRecord r;
  r.volume_id = "v1.vol.local.pvc-1-0a0b0c0d0e0f";
  r.staging_path = "/var/lib/kubelet/plugins/kubernetes.io/csi/vdisk.csi.io/abc/globalmount";
  r.mode = blockdev::VolumeMode::kBlock;
  r.access = blockdev::AccessMode::kMultiNodeMultiWriter;
  r.readonly = false;
  r.attachment = {"/dev/loop7", true};
  r.publishes.push_back({"/var/lib/kubelet/pods/p1/volumeDevices/x", false, "", std::nullopt, "", std::nullopt});
  r.publishes.push_back({"/var/lib/kubelet/pods/p2/volumeDevices/x", true, "ab12",
                         blockdev::Attachment{"/dev/loop9", true}, "", blockdev::AccessMode::kSingleNodeSingleWriter});
  return r;
}

TEST_F(NodeStateTest, RecordsSurviveANewStore) {
  {
    NodeStateStore store(dir_ + "/state");
    ASSERT_TRUE(store.Init().ok());
    ASSERT_TRUE(store.Save(Sample()).ok());
  }
  NodeStateStore again(dir_ + "/state");  // as after a driver restart
  ASSERT_TRUE(again.Init().ok());
  auto got = again.Load(Sample().volume_id);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  const VolumeRecord& r = **got;
  EXPECT_EQ(r.staging_path, Sample().staging_path);
  EXPECT_EQ(r.access, blockdev::AccessMode::kMultiNodeMultiWriter);
  EXPECT_EQ(r.attachment.path, "/dev/loop7");
  ASSERT_EQ(r.publishes.size(), 2u);
  EXPECT_TRUE(r.publishes[1].readonly);
  ASSERT_TRUE(r.publishes[1].own_attachment.has_value());
  EXPECT_EQ(r.publishes[1].own_attachment->path, "/dev/loop9");
  EXPECT_EQ(r.publishes[1].flags_fingerprint, "ab12");
  EXPECT_EQ(r.publishes[1].access, blockdev::AccessMode::kSingleNodeSingleWriter);
  EXPECT_FALSE(r.publishes[0].access.has_value());  // as in records written before it was kept
  auto all = again.LoadAll();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(NodeStateTest, MissingAndRemoved) {
  NodeStateStore store(dir_);
  ASSERT_TRUE(store.Init().ok());
  auto none = store.Load("v1.vol.local.nothing");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(store.Save(Sample()).ok());
  ASSERT_TRUE(store.Remove(Sample().volume_id).ok());
  EXPECT_FALSE(store.Load(Sample().volume_id)->has_value());
  EXPECT_TRUE(store.Remove(Sample().volume_id).ok());  // idempotent
}

TEST_F(NodeStateTest, RefusesIdsThatAreNotOurs) {
  NodeStateStore store(dir_);
  ASSERT_TRUE(store.Init().ok());
  EXPECT_FALSE(store.Load("../../etc/passwd").ok());
  VolumeRecord r = Sample();
  r.volume_id = "../escape";
  EXPECT_FALSE(store.Save(r).ok());
}

TEST_F(NodeStateTest, CorruptRecordIsDataLossNotACrash) {
  NodeStateStore store(dir_);
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(fs::WriteFileAtomic(dir_ + "/volumes/v1.vol.local.bad.json", "{not json").ok());
  EXPECT_EQ(store.Load("v1.vol.local.bad").status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(fs::WriteFileAtomic(dir_ + "/volumes/v1.vol.local.bad.json", R"({"version":1})").ok());
  EXPECT_EQ(store.Load("v1.vol.local.bad").status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(NodeStateTest, StateDirIsPrivate) {
  NodeStateStore store(dir_ + "/private");
  ASSERT_TRUE(store.Init().ok());
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/private").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST(FlagsFingerprint, OrderInsensitiveAndOpaque) {
  EXPECT_EQ(FlagsFingerprint({}), "");
  EXPECT_EQ(FlagsFingerprint({"a", "b"}), FlagsFingerprint({"b", "a"}));
  EXPECT_NE(FlagsFingerprint({"a"}), FlagsFingerprint({"b"}));
  EXPECT_EQ(FlagsFingerprint({"secret=x"}).find("secret"), std::string::npos);
}

}  // namespace
}  // namespace vdisk::csi
