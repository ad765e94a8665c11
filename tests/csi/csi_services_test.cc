// The CSI services beyond the volume lifecycle, on the local pool, through the real vdisk-csi:
//  - SnapshotMetadata: known writes between two snapshots appear in the delta and unchanged
//    regions do not, on a reflink pool (FIEMAP) and on a pool without reflinks (read-compare,
//    exact); allocated maps; paging by max_results and starting_offset; the error codes; a
//    stream the client cancels;
//  - GroupController: create / get / delete, idempotent by name, members usable alone, and a
//    group of two volumes written by one writer in alternation through vhost-user exports that
//    shows a consistent point;
//  - ControllerModifyVolume: a QoS limit measured through a vhost-user export with a front end,
//    changed while I/O runs (by this process, and by a second controller process, picked up by
//    the node's refresh), lifted again, and the codes for bad mutable parameters.
// The pools live on a reflink XFS (tests/env/xfs.sh); needs root (loop devices, mounts).
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/csi/csi_fixture.h"
#include "tests/csi/metadata_util.h"
#include "csi/vhost_publish.h"
#include "tests/csi/vhost_io.h"
#include "tests/pool/xfs_env.h"

namespace vdisk::csi::testing {
namespace {

using blockdev::vhost::testing::VhostClient;
namespace vh = blockdev::vhost;
using Clock = std::chrono::steady_clock;

constexpr int64_t kVolSize = 64 * kMiB;

class CsiServicesTest : public CsiDriverTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: loop devices, mounts and an XFS image";
    auto xfs = pooltest::SharedXfsMount();
    ASSERT_TRUE(xfs.ok()) << xfs.status();
    auto dir = pooltest::MakeTempDir(*xfs, "csisvc");
    ASSERT_TRUE(dir.ok()) << dir.status();
    pools_ = *dir;
    CsiDriverTest::SetUp();
  }
  void TearDown() override {
    second_.reset();
    CsiDriverTest::TearDown();
    if (!pools_.empty()) {
      Leftovers l = CleanUnder(pools_);
      EXPECT_EQ(l.loops, 0) << "loop devices left on the pools";
      fs::RemoveAll(pools_).IgnoreError();
    }
  }
  std::vector<std::string> PoolArgs() {
    return {"--pool", absl::StrCat("name=reflink,kind=local,reflink=on,root=", pools_, "/r"), "--pool",
            absl::StrCat("name=copy,kind=local,reflink=off,root=", pools_, "/c")};
  }
  std::vector<std::string> DriverArgs() override {
    std::vector<std::string> args = {"--endpoint", endpoint_, "--node-id", "svc-node", "--state-dir",
                                     *scratch_ / "state", "--allowed-target-root", kubelet_,
                                     "--snapshot-metadata", "--qos-refresh-seconds", "1", "-vv"};
    auto pools = PoolArgs();
    args.insert(args.end(), pools.begin(), pools.end());
    return args;
  }

  v1::Volume Vol(const std::string& name, const std::string& pool, int64_t size = kVolSize, bool vhost = false,
                 std::map<std::string, std::string> mutable_params = {}) {
    auto req = CreateReq(name, size, /*block=*/!vhost);  // vhost-user publishes Filesystem volumes
    (*req.mutable_parameters())["pool"] = pool;
    if (vhost) (*req.mutable_parameters())["attach"] = "vhost-user";
    for (const auto& [k, v] : mutable_params) (*req.mutable_mutable_parameters())[k] = v;
    return MustCreate(req);
  }

  // Kernel attach (loop device) of a Block volume; returns the path its bytes go through.
  std::string Attach(const v1::Volume& v, const std::string& tag) {
    const std::string staging = StagingDir(tag), target = TargetPath(tag);
    EXPECT_TRUE(Stage(v.volume_id(), staging, true).ok());
    EXPECT_TRUE(Publish(v.volume_id(), staging, target, true).ok());
    attached_[target] = {v.volume_id(), staging};
    return target;
  }
  void Detach(const std::string& target) {
    auto it = attached_.find(target);
    ASSERT_NE(it, attached_.end());
    EXPECT_TRUE(Unpublish(it->second.first, target).ok());
    EXPECT_TRUE(Unstage(it->second.first, it->second.second).ok());
    attached_.erase(it);
  }

  // A vhost-user export of the volume; returns the published directory (the socket is
  // kVhostSocketName in it).
  std::string Export(const v1::Volume& v, const std::string& tag) {
    const std::string staging = StagingDir(tag), target = TargetPath(tag);
    EXPECT_TRUE(StageWithContext(c(), v, staging, Cap(false)).ok());
    auto p = PublishWithContext(c(), v, staging, target, Cap(false));
    EXPECT_TRUE(p.ok()) << p;
    attached_[target] = {v.volume_id(), staging};
    return target;
  }

  v1::Volume Restore(const std::string& name, const v1::Snapshot& s, const std::string& pool) {
    auto req = CreateReq(name, s.size_bytes(), true);
    (*req.mutable_parameters())["pool"] = pool;
    req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(s.snapshot_id());
    return MustCreate(req);
  }

  StatusOr<v1::CreateVolumeGroupSnapshotResponse> Group(const std::string& name, std::vector<std::string> vols) {
    v1::CreateVolumeGroupSnapshotRequest req;
    req.set_name(name);
    for (const auto& v : vols) req.add_source_volume_ids(v);
    return c().CreateVolumeGroupSnapshot(req);
  }

  Status Modify(const std::string& id, std::map<std::string, std::string> params, CsiClient* via = nullptr) {
    v1::ControllerModifyVolumeRequest req;
    req.set_volume_id(id);
    for (const auto& [k, v] : params) (*req.mutable_mutable_parameters())[k] = v;
    return (via ? *via : c()).ControllerModifyVolume(req).status();
  }

  // 4 KiB reads at queue depth 1 through the socket for `seconds`; returns how many completed.
  static int64_t ReadFor(VhostClient& vc, double seconds) {
    std::string buf(4096, '\0');
    int64_t n = 0;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      EXPECT_EQ(VhostRequest(vc, vh::kBlkTIn, static_cast<uint64_t>(n % 1024) * 4096, &buf), vh::kBlkSOk);
      ++n;
    }
    return n;
  }

  std::string pools_;
  std::map<std::string, std::pair<std::string, std::string>> attached_;  // target -> (volume, staging)
  std::unique_ptr<DriverProcess> second_;
};

// --- capabilities -------------------------------------------------------------------------------

TEST_F(CsiServicesTest, ServicesAreAdvertised) {
  auto plugin = c().GetPluginCapabilities();
  ASSERT_TRUE(plugin.ok());
  std::set<int> services;
  for (const auto& cap : plugin->capabilities())
    if (cap.has_service()) services.insert(cap.service().type());
  EXPECT_TRUE(services.contains(v1::PluginCapability::Service::GROUP_CONTROLLER_SERVICE));
  EXPECT_TRUE(services.contains(v1::PluginCapability::Service::SNAPSHOT_METADATA_SERVICE));
  auto ctl = c().ControllerGetCapabilities();
  ASSERT_TRUE(ctl.ok());
  bool modify = false;
  for (const auto& cap : ctl->capabilities())
    modify = modify || cap.rpc().type() == v1::ControllerServiceCapability::RPC::MODIFY_VOLUME;
  EXPECT_TRUE(modify);
  auto grp = c().GroupControllerGetCapabilities();
  ASSERT_TRUE(grp.ok());
  ASSERT_EQ(grp->capabilities_size(), 1);
  EXPECT_EQ(grp->capabilities(0).rpc().type(),
            v1::GroupControllerServiceCapability::RPC::CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT);
}

// --- SnapshotMetadata ---------------------------------------------------------------------------

class SnapshotMetadataTest : public CsiServicesTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(SnapshotMetadataTest, DeltaHasTheWritesAndNothingElse) {
  const std::string pool = GetParam();
  auto vol = Vol("pvc-cbt-" + pool, pool);
  std::string dev = Attach(vol, "cbt-" + pool);
  WritePattern(dev, 0, kMiB, 1);
  WritePattern(dev, 50 * kMiB, 2 * kMiB, 9);
  auto s1 = MustSnapshot("snap-cbt-1-" + pool, vol.volume_id());
  WritePattern(dev, 8 * kMiB, 64 * 1024, 2);
  WritePattern(dev, 20 * kMiB + 4096, 4096, 3);
  WritePattern(dev, 40 * kMiB, kMiB, 4);
  auto s2 = MustSnapshot("snap-cbt-2-" + pool, vol.volume_id());
  Detach(dev);

  auto d = Delta(c(), s1.snapshot_id(), s2.snapshot_id());
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.type, v1::VARIABLE_LENGTH);
  EXPECT_EQ(d.capacity, kVolSize);
  EXPECT_TRUE(d.Covers(8 * kMiB, 64 * 1024));
  EXPECT_TRUE(d.Covers(20 * kMiB + 4096, 4096));
  EXPECT_TRUE(d.Covers(40 * kMiB, kMiB));
  EXPECT_TRUE(d.Avoids(0, 8 * kMiB)) << "unchanged data reported as changed";
  EXPECT_TRUE(d.Avoids(9 * kMiB, 11 * kMiB));
  EXPECT_TRUE(d.Avoids(21 * kMiB, 19 * kMiB));
  EXPECT_TRUE(d.Avoids(41 * kMiB, 23 * kMiB));
  const int64_t written = 64 * 1024 + 4096 + kMiB;
  if (pool == "copy") EXPECT_EQ(d.bytes(), written) << "read-compare is exact at 4 KiB";
  else EXPECT_LE(d.bytes(), written + 256 * 1024) << "FIEMAP over-reports only at the file system's unit";

  auto a1 = Allocated(c(), s1.snapshot_id());
  ASSERT_TRUE(a1.status.ok()) << a1.status;
  EXPECT_TRUE(a1.Covers(0, kMiB));
  EXPECT_TRUE(a1.Covers(50 * kMiB, 2 * kMiB));
  EXPECT_TRUE(a1.Avoids(2 * kMiB, 46 * kMiB)) << "unallocated ranges reported";
  auto a2 = Allocated(c(), s2.snapshot_id());
  ASSERT_TRUE(a2.status.ok());
  EXPECT_TRUE(a2.Covers(40 * kMiB, kMiB));
  EXPECT_TRUE(a2.Covers(8 * kMiB, 64 * 1024));

  auto same = Delta(c(), s2.snapshot_id(), s2.snapshot_id());
  ASSERT_TRUE(same.status.ok());
  EXPECT_EQ(same.bytes(), 0);
  EXPECT_EQ(same.messages, 1) << "an empty stream still carries the capacity";
}

TEST_P(SnapshotMetadataTest, PagingByMaxResultsAndStartingOffset) {
  const std::string pool = GetParam();
  auto vol = Vol("pvc-page-" + pool, pool, 16 * kMiB);
  std::string dev = Attach(vol, "page-" + pool);
  auto s1 = MustSnapshot("snap-page-1-" + pool, vol.volume_id());
  for (int i = 0; i < 40; ++i) WritePattern(dev, i * 256 * 1024, 8192, 100 + i);  // 40 separate ranges
  auto s2 = MustSnapshot("snap-page-2-" + pool, vol.volume_id());
  Detach(dev);

  auto all = Delta(c(), s1.snapshot_id(), s2.snapshot_id());
  ASSERT_TRUE(all.status.ok()) << all.status;
  ASSERT_GE(all.extents.size(), 40u);
  auto paged = Delta(c(), s1.snapshot_id(), s2.snapshot_id(), 0, 3);
  ASSERT_TRUE(paged.status.ok());
  EXPECT_EQ(paged.extents, all.extents);
  EXPECT_GE(paged.messages, static_cast<int>((all.extents.size() + 2) / 3));

  // Resume after the first range: it is not sent again.
  const auto first = all.extents.front();
  auto rest = Delta(c(), s1.snapshot_id(), s2.snapshot_id(), first.first + first.second);
  ASSERT_TRUE(rest.status.ok());
  const std::vector<std::pair<int64_t, int64_t>> after_first(all.extents.begin() + 1, all.extents.end());
  EXPECT_EQ(rest.extents, after_first);
  // Resume inside the second range: it is clipped at the offset rounded down to 4 KiB.
  const auto second = all.extents[1];
  const int64_t mid = second.first + 4096 + 100;
  auto clipped = Delta(c(), s1.snapshot_id(), s2.snapshot_id(), mid);
  ASSERT_TRUE(clipped.status.ok());
  ASSERT_FALSE(clipped.extents.empty());
  EXPECT_EQ(clipped.extents.front().first, second.first + 4096);
  EXPECT_EQ(clipped.extents.front().first + clipped.extents.front().second, second.first + second.second);
  // Allocated pages the same way.
  auto alloc = Allocated(c(), s2.snapshot_id(), 0, 1);
  ASSERT_TRUE(alloc.status.ok());
  EXPECT_GE(alloc.messages, 40);
  // At the very end: nothing left, one message with the capacity.
  auto end = Delta(c(), s1.snapshot_id(), s2.snapshot_id(), 16 * kMiB);
  ASSERT_TRUE(end.status.ok()) << end.status;
  EXPECT_TRUE(end.extents.empty());
  EXPECT_EQ(end.capacity, 16 * kMiB);
}

INSTANTIATE_TEST_SUITE_P(Pools, SnapshotMetadataTest, ::testing::Values("reflink", "copy"),
                         [](const auto& info) { return info.param; });

TEST_F(CsiServicesTest, SnapshotMetadataErrorCodes) {
  auto vol = Vol("pvc-cbt-codes", "reflink", 16 * kMiB);
  auto other = Vol("pvc-cbt-other", "reflink", 16 * kMiB);
  auto elsewhere = Vol("pvc-cbt-elsewhere", "copy", 16 * kMiB);
  auto s1 = MustSnapshot("snap-codes-1", vol.volume_id());
  auto s2 = MustSnapshot("snap-codes-2", vol.volume_id());
  auto so = MustSnapshot("snap-codes-other", other.volume_id());
  auto se = MustSnapshot("snap-codes-elsewhere", elsewhere.volume_id());
  using absl::StatusCode;
  EXPECT_EQ(Delta(c(), "", s2.snapshot_id()).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Delta(c(), s1.snapshot_id(), "").status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Allocated(c(), "").status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Allocated(c(), "snap-of-another-driver").status.code(), StatusCode::kNotFound);
  EXPECT_EQ(Allocated(c(), vol.volume_id()).status.code(), StatusCode::kNotFound) << "a volume id is not a snapshot";
  EXPECT_EQ(Delta(c(), "v1.snap.reflink.s-nope", s2.snapshot_id()).status.code(), StatusCode::kNotFound);
  EXPECT_EQ(Allocated(c(), s1.snapshot_id(), -1).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Allocated(c(), s1.snapshot_id(), 0, -1).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Allocated(c(), s1.snapshot_id(), 16 * kMiB + 1).status.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(Delta(c(), s1.snapshot_id(), s2.snapshot_id(), 1ll << 40).status.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(Delta(c(), so.snapshot_id(), s2.snapshot_id()).status.code(), StatusCode::kInvalidArgument)
      << "snapshots of different volumes";
  EXPECT_EQ(Delta(c(), se.snapshot_id(), s2.snapshot_id()).status.code(), StatusCode::kInvalidArgument)
      << "snapshots of different pools";
  EXPECT_EQ(Delta(c(), s2.snapshot_id(), s1.snapshot_id()).status.code(), StatusCode::kInvalidArgument)
      << "base newer than target";
  v1::DeleteSnapshotRequest del;
  del.set_snapshot_id(s1.snapshot_id());
  ASSERT_TRUE(c().DeleteSnapshot(del).ok());
  EXPECT_EQ(Delta(c(), s1.snapshot_id(), s2.snapshot_id()).status.code(), StatusCode::kNotFound);
  EXPECT_EQ(Allocated(c(), s1.snapshot_id()).status.code(), StatusCode::kNotFound);
}

TEST_F(CsiServicesTest, CancelledStreamStopsAndReleasesTheSnapshots) {
  auto vol = Vol("pvc-cbt-cancel", "copy", 32 * kMiB);
  std::string dev = Attach(vol, "cancel");
  auto s1 = MustSnapshot("snap-cancel-1", vol.volume_id());
  for (int i = 0; i < 200; ++i) WritePattern(dev, i * 128 * 1024, 4096, 7 + i);
  auto s2 = MustSnapshot("snap-cancel-2", vol.volume_id());
  Detach(dev);
  auto cut = Delta(c(), s1.snapshot_id(), s2.snapshot_id(), 0, 1, /*cancel_after=*/2);
  EXPECT_EQ(cut.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(cut.messages, 2);
  // The driver is fine, the snapshots are not held: a full stream works and they can be deleted.
  ASSERT_TRUE(c().Probe().ok());
  auto full = Delta(c(), s1.snapshot_id(), s2.snapshot_id());
  ASSERT_TRUE(full.status.ok());
  EXPECT_EQ(full.extents.size(), 200u);
  v1::DeleteSnapshotRequest del;
  del.set_snapshot_id(s2.snapshot_id());
  EXPECT_TRUE(c().DeleteSnapshot(del).ok());
}

// --- GroupController ----------------------------------------------------------------------------

TEST_F(CsiServicesTest, GroupSnapshotLifecycle) {
  auto a = Vol("pvc-grp-a", "reflink", 8 * kMiB);
  auto b = Vol("pvc-grp-b", "reflink", 8 * kMiB);
  auto other_pool = Vol("pvc-grp-c", "copy", 8 * kMiB);
  std::string da = Attach(a, "ga"), db = Attach(b, "gb");
  const std::string ha = WritePattern(da, 0, 2 * kMiB, 11), hb = WritePattern(db, kMiB, 2 * kMiB, 12);
  Detach(da);
  Detach(db);

  using absl::StatusCode;
  EXPECT_EQ(Code(Group("", {a.volume_id()})), StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Group("grp-none", {})), StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Group("grp-pools", {a.volume_id(), other_pool.volume_id()})), StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Group("grp-missing", {a.volume_id(), "v1.vol.reflink.v-nope"})), StatusCode::kNotFound);
  {
    v1::CreateVolumeGroupSnapshotRequest req;
    req.set_name("grp-params");
    req.add_source_volume_ids(a.volume_id());
    (*req.mutable_parameters())["color"] = "blue";
    EXPECT_EQ(Code(c().CreateVolumeGroupSnapshot(req)), StatusCode::kInvalidArgument);
  }

  auto g = Group("grp-ab", {a.volume_id(), b.volume_id()});
  ASSERT_TRUE(g.ok()) << g.status();
  const auto& gs = g->group_snapshot();
  EXPECT_TRUE(gs.group_snapshot_id().starts_with("v1.grp.reflink."));
  EXPECT_TRUE(gs.ready_to_use());
  ASSERT_EQ(gs.snapshots_size(), 2);
  EXPECT_EQ(gs.snapshots(0).source_volume_id(), a.volume_id());
  EXPECT_EQ(gs.snapshots(1).source_volume_id(), b.volume_id());
  for (const auto& s : gs.snapshots()) {
    EXPECT_EQ(s.group_snapshot_id(), gs.group_snapshot_id());
    EXPECT_TRUE(s.ready_to_use());
  }
  // Idempotent by name; the name is taken for other volumes.
  auto again = Group("grp-ab", {a.volume_id(), b.volume_id()});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->group_snapshot().group_snapshot_id(), gs.group_snapshot_id());
  EXPECT_EQ(again->group_snapshot().snapshots(1).snapshot_id(), gs.snapshots(1).snapshot_id());
  EXPECT_EQ(Code(Group("grp-ab", {a.volume_id()})), StatusCode::kAlreadyExists);

  // Members are ordinary snapshots: listed with their group, restorable alone, mappable.
  v1::ListSnapshotsRequest ls;
  ls.set_source_volume_id(b.volume_id());
  auto listed = c().ListSnapshots(ls);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->entries_size(), 1);
  EXPECT_EQ(listed->entries(0).snapshot().group_snapshot_id(), gs.group_snapshot_id());
  auto rb = Restore("pvc-grp-b-restored", gs.snapshots(1), "reflink");
  std::string drb = Attach(rb, "grb");
  EXPECT_EQ(ReadHash(drb, kMiB, 2 * kMiB), hb);
  Detach(drb);
  auto ra = Restore("pvc-grp-a-restored", gs.snapshots(0), "reflink");
  std::string dra = Attach(ra, "gra");
  EXPECT_EQ(ReadHash(dra, 0, 2 * kMiB), ha);
  Detach(dra);
  EXPECT_TRUE(Allocated(c(), gs.snapshots(0).snapshot_id()).Covers(0, 2 * kMiB));

  // Get: by id, with the member list checked.
  v1::GetVolumeGroupSnapshotRequest get;
  get.set_group_snapshot_id(gs.group_snapshot_id());
  auto got = c().GetVolumeGroupSnapshot(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->group_snapshot().snapshots_size(), 2);
  get.add_snapshot_ids(gs.snapshots(0).snapshot_id());
  EXPECT_EQ(Code(c().GetVolumeGroupSnapshot(get)), StatusCode::kInvalidArgument);
  get.add_snapshot_ids(gs.snapshots(1).snapshot_id());
  EXPECT_TRUE(c().GetVolumeGroupSnapshot(get).ok());
  get.clear_snapshot_ids();
  get.set_group_snapshot_id("v1.grp.reflink.gdoesnotexist");
  EXPECT_EQ(Code(c().GetVolumeGroupSnapshot(get)), StatusCode::kNotFound);

  // Delete: members go with the group; repeats and unknown ids are fine.
  v1::DeleteVolumeGroupSnapshotRequest del;
  del.set_group_snapshot_id(gs.group_snapshot_id());
  for (const auto& s : gs.snapshots()) del.add_snapshot_ids(s.snapshot_id());
  ASSERT_TRUE(c().DeleteVolumeGroupSnapshot(del).ok());
  ASSERT_TRUE(c().DeleteVolumeGroupSnapshot(del).ok());
  ls.clear_source_volume_id();
  auto after = c().ListSnapshots(ls);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->entries_size(), 0);
  get.set_group_snapshot_id(gs.group_snapshot_id());
  EXPECT_EQ(Code(c().GetVolumeGroupSnapshot(get)), StatusCode::kNotFound);
  del.clear_snapshot_ids();
  del.set_group_snapshot_id("not-a-vdisk-group");
  EXPECT_TRUE(c().DeleteVolumeGroupSnapshot(del).ok());
  del.set_group_snapshot_id("");
  EXPECT_EQ(Code(c().DeleteVolumeGroupSnapshot(del)), StatusCode::kInvalidArgument);
}

// One writer writes sequence number n to volume A, waits for it, then n to volume B, and so on,
// through the vhost-user exports; groups are taken meanwhile. A consistent point holds B's n only
// if it holds A's n, and A's n only if it holds B's n-1: a-1 <= b <= a.
TEST_F(CsiServicesTest, GroupSnapshotOfAlternatingWriterIsConsistent) {
  auto a = Vol("pvc-alt-a", "reflink", 8 * kMiB, /*vhost=*/true);
  auto b = Vol("pvc-alt-b", "reflink", 8 * kMiB, /*vhost=*/true);
  const std::string sa = Export(a, "alt-a"), sb = Export(b, "alt-b");
  VhostClient va, vb;
  ASSERT_TRUE(va.ConnectIn(sa, kVhostSocketName).ok());
  ASSERT_TRUE(va.Setup(1).ok());
  ASSERT_TRUE(vb.ConnectIn(sb, kVhostSocketName).ok());
  ASSERT_TRUE(vb.Setup(1).ok());

  AlternatingWriter writer(va, vb);
  std::vector<v1::VolumeGroupSnapshot> groups;
  for (int i = 0; i < 6; ++i) {
    writer.WaitFor(20 * (i + 1));
    auto g = Group(absl::StrCat("grp-alt-", i), {a.volume_id(), b.volume_id()});
    ASSERT_TRUE(g.ok()) << g.status();
    groups.push_back(g->group_snapshot());
  }
  writer.Stop();
  EXPECT_EQ(writer.failures(), 0);
  EXPECT_NE(driver_->Log().find("consistency=held"), std::string::npos)
      << "both members are exported here: acknowledgements must have been held";

  auto seq_of = [&](const v1::Snapshot& s, const std::string& tag) -> uint64_t {
    auto r = Restore("pvc-alt-r-" + tag, s, "reflink");
    std::string dev = Attach(r, "alt-r-" + tag);
    char block0[8] = {};
    int fd = ::open(dev.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pread(fd, block0, sizeof block0, 0), static_cast<ssize_t>(sizeof block0));
    ::close(fd);
    Detach(dev);
    return AlternatingWriter::SequenceOf(block0);
  };
  for (size_t i = 0; i < groups.size(); ++i) {
    const uint64_t an = seq_of(groups[i].snapshots(0), absl::StrCat(i, "a"));
    const uint64_t bn = seq_of(groups[i].snapshots(1), absl::StrCat(i, "b"));
    EXPECT_TRUE(bn <= an && an <= bn + 1) << "group " << i << ": A holds write " << an << ", B holds write " << bn;
    EXPECT_GT(an, 0u);
  }
}

// --- ControllerModifyVolume and QoS -------------------------------------------------------------

TEST_F(CsiServicesTest, MutableParameterCodes) {
  using absl::StatusCode;
  auto bad = CreateReq("pvc-qos-bad", 8 * kMiB, true);
  (*bad.mutable_mutable_parameters())["iopsLimit"] = "lots";
  EXPECT_EQ(Code(c().CreateVolume(bad)), StatusCode::kInvalidArgument);
  (*bad.mutable_mutable_parameters())["iopsLimit"] = "100";
  (*bad.mutable_mutable_parameters())["XXX_FakeKey"] = "XXX_FakeValue";
  EXPECT_EQ(Code(c().CreateVolume(bad)), StatusCode::kInvalidArgument);
  v1::ListVolumesRequest lv;
  EXPECT_EQ(c().ListVolumes(lv)->entries_size(), 0) << "a refused CreateVolume made a volume";

  auto vol = Vol("pvc-qos-codes", "reflink", 8 * kMiB, false, {{"iopsLimit", "500"}});
  EXPECT_EQ(Modify("", {{"iopsLimit", "1"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Modify("v1.vol.reflink.v-nope", {{"iopsLimit", "1"}}).code(), StatusCode::kNotFound);
  EXPECT_EQ(Modify("non-existing-volume-id", {}).code(), StatusCode::kNotFound);
  EXPECT_EQ(Modify(vol.volume_id(), {{"XXX_FakeKey", "XXX_FakeValue"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Modify(vol.volume_id(), {{"iopsBurst", "100"}}).code(), StatusCode::kInvalidArgument)
      << "a burst below the limit it joins";
  EXPECT_TRUE(Modify(vol.volume_id(), {}).ok());
  // Keys merge (absent keys change nothing, "0" lifts one), and persist with the volume.
  ASSERT_TRUE(Modify(vol.volume_id(), {{"writeBpsLimit", "100Mi"}}).ok());
  ASSERT_TRUE(Modify(vol.volume_id(), {{"iopsLimit", "0"}, {"readIopsLimit", "300"}}).ok());
  const std::string local = vol.volume_id().substr(std::string("v1.vol.reflink.").size());
  std::ifstream in(pools_ + "/r/meta/volumes/" + local + ".json");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("\"writeBpsLimit\": \"100Mi\""), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\"readIopsLimit\": \"300\""), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("iopsLimit\": \"500"), std::string::npos) << text.str();
}

TEST_F(CsiServicesTest, QosLimitHoldsThroughTheExportAndChangesLive) {
  auto vol = Vol("pvc-qos", "reflink", 8 * kMiB, /*vhost=*/true, {{"readIopsLimit", "100"}});
  const std::string sock = Export(vol, "qos");
  VhostClient vc;
  ASSERT_TRUE(vc.ConnectIn(sock, kVhostSocketName).ok());
  ASSERT_TRUE(vc.Setup(1).ok());

  // 100/s for 2 s, plus the bucket's tenth of a second.
  const int64_t slow = ReadFor(vc, 2.0);
  EXPECT_GE(slow, 185);
  EXPECT_LE(slow, 215);

  // Raised while I/O runs, from another thread (the RPC does not stop the guest).
  std::thread modifier([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(Modify(vol.volume_id(), {{"readIopsLimit", "300"}}).ok());
  });
  ReadFor(vc, 0.5);
  modifier.join();
  const int64_t fast = ReadFor(vc, 2.0);
  EXPECT_GE(fast, 540);
  EXPECT_LE(fast, 640);

  // A second controller process on the same pool changes it; the node's refresh (1 s here)
  // brings it to the running export.
  std::vector<std::string> args = {"--endpoint", "unix://" + (*sockdir_ / "ctl.sock"), "--node-id", "svc-node",
                                   "--role", "controller", "--state-dir", *scratch_ / "state-ctl"};
  auto pools = PoolArgs();
  args.insert(args.end(), pools.begin(), pools.end());
  second_ = std::make_unique<DriverProcess>(args, *scratch_ / "ctl.log", "unix://" + (*sockdir_ / "ctl.sock"));
  std::string error;
  ASSERT_TRUE(second_->Start(&error)) << error;
  ASSERT_TRUE(Modify(vol.volume_id(), {{"readIopsLimit", "150"}}, &second_->client()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const int64_t refreshed = ReadFor(vc, 2.0);
  EXPECT_GE(refreshed, 270);
  EXPECT_LE(refreshed, 330);

  // Lifted: well above every limit set so far.
  ASSERT_TRUE(Modify(vol.volume_id(), {{"readIopsLimit", "0"}}).ok());
  const int64_t free_run = ReadFor(vc, 1.0);
  EXPECT_GT(free_run, 450);
}

}  // namespace
}  // namespace vdisk::csi::testing
