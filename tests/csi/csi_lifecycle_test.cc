// A VM disk's life through CSI with the bytes checked at every step: write, snapshot, restore
// (larger), clone, expand, for Block and Filesystem volumes; and concurrency: a second operation
// on a busy volume or name gets ABORTED, never a race.
#include <atomic>
#include <thread>

#include "tests/csi/csi_fixture.h"

namespace vdisk::csi::testing {
namespace {

class LifecycleTest : public CsiDriverTest, public ::testing::WithParamInterface<bool> {
 protected:
  // Stages and publishes `id`, runs `fn(data_path)`, then tears down.
  template <typename Fn>
  void WithPublished(const std::string& id, const std::string& tag, Fn fn) {
    const bool block = GetParam();
    const std::string staging = StagingDir(tag), target = TargetPath(tag);
    ASSERT_TRUE(Stage(id, staging, block).ok());
    ASSERT_TRUE(Publish(id, staging, target, block).ok());
    fn(DataPath(target, block));
    ASSERT_TRUE(Unpublish(id, target).ok());
    ASSERT_TRUE(Unstage(id, staging).ok());
  }
};

TEST_P(LifecycleTest, SnapshotRestoreCloneExpandKeepTheBytes) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq("vm-disk", 32 * kMiB, block));
  std::string head, tail;
  WithPublished(vol.volume_id(), "origin", [&](const std::string& p) {
    head = WritePattern(p, 0, 2 * kMiB, 1);
    tail = WritePattern(p, 30 * kMiB, 2 * kMiB, 2);
  });
  auto snap = MustSnapshot("vm-disk-snap", vol.volume_id());
  EXPECT_EQ(snap.size_bytes(), 32 * kMiB);

  // Change the origin after the snapshot: the snapshot keeps the old bytes.
  std::string changed;
  WithPublished(vol.volume_id(), "origin2", [&](const std::string& p) { changed = WritePattern(p, 0, 2 * kMiB, 3); });

  auto restore = CreateReq("vm-disk-restored", 48 * kMiB, block);
  restore.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  auto restored = MustCreate(restore);
  EXPECT_EQ(restored.capacity_bytes(), 48 * kMiB);
  WithPublished(restored.volume_id(), "restored", [&](const std::string& p) {
    EXPECT_EQ(ReadHash(p, 0, 2 * kMiB), head);
    EXPECT_EQ(ReadHash(p, 30 * kMiB, 2 * kMiB), tail);
    EXPECT_EQ(ReadHash(p, 47 * kMiB, kMiB), ReadHash("/dev/zero", 0, kMiB)) << "the grown tail reads as zeroes";
  });

  auto clone = CreateReq("vm-disk-clone", 0, block);
  clone.mutable_volume_content_source()->mutable_volume()->set_volume_id(vol.volume_id());
  auto cl = MustCreate(clone);
  EXPECT_EQ(cl.capacity_bytes(), 32 * kMiB);
  WithPublished(cl.volume_id(), "clone", [&](const std::string& p) {
    EXPECT_EQ(ReadHash(p, 0, 2 * kMiB), changed);
    EXPECT_EQ(ReadHash(p, 30 * kMiB, 2 * kMiB), tail);
    WritePattern(p, 0, kMiB, 4);  // the clone is independent of its source
  });
  WithPublished(vol.volume_id(), "origin3", [&](const std::string& p) { EXPECT_EQ(ReadHash(p, 0, 2 * kMiB), changed); });

  v1::ControllerExpandVolumeRequest grow;
  grow.set_volume_id(cl.volume_id());
  grow.mutable_capacity_range()->set_required_bytes(64 * kMiB);
  ASSERT_TRUE(c().ControllerExpandVolume(grow).ok());
  WithPublished(cl.volume_id(), "grown", [&](const std::string& p) {
    EXPECT_EQ(ReadHash(p, 30 * kMiB, 2 * kMiB), tail);
    WritePattern(p, 63 * kMiB, kMiB, 5);
  });

  for (const auto& id : {restored.volume_id(), cl.volume_id(), vol.volume_id()}) {
    v1::DeleteVolumeRequest d;
    d.set_volume_id(id);
    EXPECT_TRUE(c().DeleteVolume(d).ok());
  }
  v1::DeleteSnapshotRequest ds;
  ds.set_snapshot_id(snap.snapshot_id());
  EXPECT_TRUE(c().DeleteSnapshot(ds).ok());
  EXPECT_EQ(c().ListVolumes({})->entries_size(), 0);
  EXPECT_EQ(c().ListSnapshots({})->entries_size(), 0);
  auto left = FindUnder(scratch_->path());
  EXPECT_EQ(left.mounts, 0);
  EXPECT_EQ(left.loops, 0);
}

TEST_P(LifecycleTest, DeletingAPublishedVolumeIsRefused) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq("vm-in-use", 8 * kMiB, block));
  const std::string staging = StagingDir("inuse"), target = TargetPath("inuse");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, block).ok());
  v1::DeleteVolumeRequest d;
  d.set_volume_id(vol.volume_id());
  EXPECT_EQ(Code(c().DeleteVolume(d)), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  EXPECT_TRUE(c().DeleteVolume(d).ok());
}

INSTANTIATE_TEST_SUITE_P(Modes, LifecycleTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Block" : "Filesystem"; });

class ConcurrencyTest : public CsiDriverTest {};

TEST_F(ConcurrencyTest, OperationsOnABusyVolumeOrNameAreAborted) {
  // A source with real data, so that cloning it (a host copy on this non-reflink pool) takes a
  // while; meanwhile, the same name again and an exclusive operation on the source must be ABORTED.
  auto src = MustCreate(CreateReq("golden-image", 512 * kMiB, true));
  const std::string staging = StagingDir("golden"), target = TargetPath("golden");
  ASSERT_TRUE(Stage(src.volume_id(), staging, true).ok());
  ASSERT_TRUE(Publish(src.volume_id(), staging, target, true).ok());
  for (int i = 0; i < 8; ++i) WritePattern(target, static_cast<uint64_t>(i) * 64 * kMiB, 64 * kMiB, 100 + i);
  ASSERT_TRUE(Unpublish(src.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(src.volume_id(), staging).ok());

  auto clone = CreateReq("vm-from-golden", 0, true);
  clone.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume_id());
  // Two "provisioners" create the same clone (as after a CO failover) while a third keeps
  // issuing an exclusive operation on the source (an expand to its own size, a no-op once it is
  // allowed). Whoever holds the name copies; everyone else must be turned away with ABORTED.
  std::atomic<int> aborted_name{0}, aborted_source{0}, other{0}, finished{0};
  std::string ids[2];
  auto creator = [&](int i) {
    for (;;) {
      auto r = c().CreateVolume(clone);
      if (r.status().code() == absl::StatusCode::kAborted) {
        ++aborted_name;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      if (r.ok()) ids[i] = r->volume().volume_id();
      else ++other;
      break;
    }
    ++finished;
  };
  std::thread a(creator, 0), b(creator, 1);
  v1::ControllerExpandVolumeRequest touch;
  touch.set_volume_id(src.volume_id());
  touch.mutable_capacity_range()->set_required_bytes(512 * kMiB);
  while (finished < 2) {
    auto e = c().ControllerExpandVolume(touch);
    if (e.status().code() == absl::StatusCode::kAborted) ++aborted_source;
    else if (!e.ok()) ++other;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  a.join();
  b.join();
  EXPECT_EQ(other, 0);
  EXPECT_GT(aborted_name, 0);
  EXPECT_GT(aborted_source, 0);
  ASSERT_FALSE(ids[0].empty());
  EXPECT_EQ(ids[0], ids[1]);
  const std::string first_id = ids[0];
  // Afterwards: exactly one clone, the source intact, and the locks released.
  auto again = c().CreateVolume(clone);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->volume().volume_id(), first_id);
  EXPECT_EQ(c().ListVolumes({})->entries_size(), 2);
  v1::DeleteVolumeRequest del;
  del.set_volume_id(src.volume_id());
  EXPECT_TRUE(c().DeleteVolume(del).ok());
}

TEST_F(ConcurrencyTest, ACloneInterruptedByADriverCrashIsHiddenThenResumedByTheRetry) {
  // The external-provisioner retries CreateVolume after a timeout or a plugin restart; a host
  // copy killed midway must neither show up as a volume nor be duplicated, and the retry must
  // produce the right bytes.
  auto src = MustCreate(CreateReq("golden-crash", 512 * kMiB, true));
  const std::string staging = StagingDir("gc"), target = TargetPath("gc");
  ASSERT_TRUE(Stage(src.volume_id(), staging, true).ok());
  ASSERT_TRUE(Publish(src.volume_id(), staging, target, true).ok());
  std::vector<std::string> sums;
  for (int i = 0; i < 8; ++i) sums.push_back(WritePattern(target, static_cast<uint64_t>(i) * 64 * kMiB, 64 * kMiB, 200 + i));
  ASSERT_TRUE(Unpublish(src.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(src.volume_id(), staging).ok());

  auto clone = CreateReq("vm-crash-clone", 0, true);
  clone.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume_id());
  std::thread t([&] { (void)c().CreateVolume(clone); });  // will be cut off by the crash
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  driver_->Kill();
  t.join();
  StartDriver();
  auto listed = c().ListVolumes({});
  ASSERT_TRUE(listed.ok());
  for (const auto& e : listed->entries())
    EXPECT_EQ(e.volume().volume_id(), src.volume_id()) << "a half-made clone is listed as a volume";

  auto r = c().CreateVolume(clone);  // the CO's retry
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(c().ListVolumes({})->entries_size(), 2);
  const std::string s2 = StagingDir("gc2"), t2 = TargetPath("gc2");
  ASSERT_TRUE(Stage(r->volume().volume_id(), s2, true).ok());
  ASSERT_TRUE(Publish(r->volume().volume_id(), s2, t2, true).ok());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(ReadHash(t2, static_cast<uint64_t>(i) * 64 * kMiB, 64 * kMiB), sums[i]) << i;
  ASSERT_TRUE(Unpublish(r->volume().volume_id(), t2).ok());
  ASSERT_TRUE(Unstage(r->volume().volume_id(), s2).ok());
}

TEST_F(ConcurrencyTest, ManyClonesOfOneSourceRunTogether) {
  // Shared locks: several clones of one golden image may proceed at once.
  auto src = MustCreate(CreateReq("golden-small", 4 * kMiB, true));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto req = CreateReq("vm-" + std::to_string(i), 0, true);
      req.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume_id());
      for (int attempt = 0; attempt < 50; ++attempt) {
        auto r = c().CreateVolume(req);
        if (r.ok()) {
          ++ok;
          return;
        }
        if (r.status().code() != absl::StatusCode::kAborted) {
          ADD_FAILURE() << r.status();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(c().ListVolumes({})->entries_size(), 5);
}

}  // namespace
}  // namespace vdisk::csi::testing
