// vdisk-csi with an RBD pool, spoken to as the Kubernetes sidecars do, on the real test cluster:
// provisioning (Block RWX for live migration), idempotent repeats, restarts of the driver,
// credentials from the CSI secrets, snapshots with size and ready_to_use, restore and clone with
// the bytes checked through the image itself, expand, capacity, the node side on a node
// without kernel RBD, and a Filesystem volume published with attach: vhost-user (the image served
// through librbd at a kubelet-shaped target, surviving a killed node plugin); with credentials
// given only as CSI secrets, the whole node lifecycle over that attachment, including the export
// restored at plugin start-up.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "common/fs.h"
#include "csi/vhost_publish.h"
#include "tests/csi/driver_process.h"
#include "tests/csi/metadata_util.h"
#include "tests/csi/vhost_io.h"
#include "tests/pool/pool_test_util.h"
#include "tests/rbd/ceph_env.h"
#include "tests/vhost/vhost_client.h"

namespace vdisk::csi::testing {
namespace {

namespace v1 = ::csi::v1;
using blockdev::vhost::testing::VhostClient;
using Mode = v1::VolumeCapability::AccessMode;
using ::absl::StatusCode;
constexpr int64_t kMiB = 1 << 20;

v1::VolumeCapability Cap(bool block, Mode::Mode mode) {
  v1::VolumeCapability c;
  if (block) c.mutable_block();
  else c.mutable_mount();
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

class RbdCsiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadCephEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    instance_ = vdisk::testing::UniqueName("csi");
    scratch_ = std::make_unique<ScratchDir>("vdisk-rbd-csi");
    sockdir_ = std::make_unique<ScratchDir>("vdisk-rbd-sock", "/tmp");
    endpoint_ = "unix://" + (*sockdir_ / "csi.sock");
    pool_flag_ = absl::StrCat("name=ceph,kind=rbd,conf=", env_.conf, ",rbd_pool=", env_.rbd_pool,
                              ",instance=", instance_);
    StartDriver(/*with_keyring=*/true);
  }

  void TearDown() override {
    if (driver_ && !with_keyring_) RestartDriver(/*with_keyring=*/true);  // to list what is left
    if (driver_) {
      // Clean up through CSI: snapshots first, then volumes (children before parents is not
      // required: the pool hides parents until their children are gone).
      v1::ListSnapshotsRequest ls;
      if (auto snaps = c().ListSnapshots(ls); snaps.ok())
        for (const auto& e : snaps->entries()) {
          v1::DeleteSnapshotRequest d;
          d.set_snapshot_id(e.snapshot().snapshot_id());
          *d.mutable_secrets() = Secrets();
          EXPECT_TRUE(c().DeleteSnapshot(d).ok());
        }
      v1::ListVolumesRequest lv;
      if (auto vols = c().ListVolumes(lv); vols.ok())
        for (const auto& e : vols->entries()) {
          v1::DeleteVolumeRequest d;
          d.set_volume_id(e.volume().volume_id());
          *d.mutable_secrets() = Secrets();
          EXPECT_TRUE(c().DeleteVolume(d).ok()) << e.volume().volume_id();
        }
      driver_->Stop();
    }
    driver_.reset();
    scratch_.reset();
    sockdir_.reset();
  }

  // with_keyring: the pool has an identity of its own. bare_node: the plugin sees a ceph.conf
  // that names the monitors and no key at all (a node holding no Ceph keys), instead of the test
  // cluster's, whose [client] section names client.admin's keyring.
  void StartDriver(bool with_keyring, bool bare_node = false) {
    with_keyring_ = with_keyring;
    std::string pool = pool_flag_;
    if (bare_node) {
      const std::string bare = *scratch_ / "bare-ceph.conf";
      ASSERT_TRUE(fs::WriteFileAtomic(bare, absl::StrCat("[global]\nmon_host = ", env_.mon_host, "\n")).ok());
      pool = absl::StrCat("name=ceph,kind=rbd,conf=", bare, ",rbd_pool=", env_.rbd_pool, ",instance=", instance_);
    }
    if (with_keyring) absl::StrAppend(&pool, ",user=", env_.driver_user, ",keyring=", env_.driver_keyring);
    driver_ = std::make_unique<DriverProcess>(
        std::vector<std::string>{"--endpoint", endpoint_, "--node-id", "rbd-node", "--pool", pool,
                                 "--state-dir", *scratch_ / "state", "--allowed-target-root",
                                 *scratch_ / "kubelet", "--vhost-dir", *sockdir_ / "vhost", "-vv"},
        *scratch_ / "driver.log", endpoint_);
    std::string error;
    ASSERT_TRUE(driver_->Start(&error)) << error;
  }
  void RestartDriver(bool with_keyring = true, bool bare_node = false) {
    driver_->Stop();
    StartDriver(with_keyring, bare_node);
  }
  void KillAndRestartDriver() {
    driver_->Kill();
    StartDriver(/*with_keyring=*/true);
  }

  google::protobuf::Map<std::string, std::string> Secrets() const {
    google::protobuf::Map<std::string, std::string> s;
    s["userID"] = env_.driver_user;
    s["userKey"] = env_.driver_key;
    return s;
  }

  v1::CreateVolumeRequest CreateReq(const std::string& name, int64_t size,
                                    Mode::Mode mode = Mode::MULTI_NODE_MULTI_WRITER) {
    v1::CreateVolumeRequest r;
    r.set_name(name);
    if (size) r.mutable_capacity_range()->set_required_bytes(size);
    *r.add_volume_capabilities() = Cap(true, mode);
    (*r.mutable_parameters())["pool"] = "ceph";
    *r.mutable_secrets() = Secrets();
    return r;
  }

  // The volume's image, opened directly through the rbd: device scheme (the data path a
  // vhost-user export or the copy engine would use).
  std::unique_ptr<blockdev::Device> OpenImage(const v1::Volume& v) {
    blockdev::RegisterBuiltinBackends();
    const auto& ctx = v.volume_context();
    EXPECT_TRUE(ctx.contains("rbdImage")) << "volume_context lacks rbdImage";
    if (!ctx.contains("rbdImage")) return nullptr;
    auto dev = blockdev::OpenDeviceUri(
        absl::StrCat("rbd:", ctx.at("rbdPool"), "/", ctx.at("rbdImage"), "?conf=", env_.conf,
                     "&id=", env_.driver_user, "&keyring=", env_.driver_keyring),
        false);
    EXPECT_TRUE(dev.ok()) << dev.status();
    return dev.ok() ? std::move(*dev) : nullptr;
  }

  CsiClient& c() { return driver_->client(); }

  v1::Snapshot Snap(const std::string& name, const v1::Volume& vol) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_volume_id(vol.volume_id());
    *req.mutable_secrets() = Secrets();
    auto r = c().CreateSnapshot(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->snapshot() : v1::Snapshot();
  }
  v1::Volume Vol(const std::string& name, int64_t size, std::map<std::string, std::string> mutable_params = {}) {
    auto req = CreateReq(name, size);
    for (const auto& [k, v] : mutable_params) (*req.mutable_mutable_parameters())[k] = v;
    auto r = c().CreateVolume(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->volume() : v1::Volume();
  }
  v1::Volume RestoreOf(const std::string& name, const v1::Snapshot& s) {
    auto req = CreateReq(name, 0);
    req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(s.snapshot_id());
    auto r = c().CreateVolume(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->volume() : v1::Volume();
  }
  // `rbd image-meta get` as the cluster admin ("" when the key is not set).
  std::string ImageMeta(const v1::Volume& v, const std::string& key) {
    const auto& ctx = v.volume_context();
    std::string cmd = absl::StrCat("rbd -c ", env_.conf, " image-meta get ", ctx.at("rbdPool"), "/",
                                   ctx.at("rbdImage"), " ", key, " 2>/dev/null");
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      ::pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }

  vdisk::testing::CephEnv env_;
  bool with_keyring_ = true;
  std::string instance_, endpoint_, pool_flag_;
  std::unique_ptr<ScratchDir> scratch_, sockdir_;
  std::unique_ptr<DriverProcess> driver_;
};

TEST_F(RbdCsiTest, ProvisionSnapshotRestoreCloneExpandThroughCsi) {
  auto created = c().CreateVolume(CreateReq("vm-rbd-disk", 32 * kMiB));
  ASSERT_TRUE(created.ok()) << created.status() << driver_->Log();
  const v1::Volume vol = created->volume();
  EXPECT_EQ(vol.capacity_bytes(), 32 * kMiB);
  EXPECT_NE(vol.volume_id().find(".ceph."), std::string::npos) << vol.volume_id();
  // Idempotent repeat, incompatible repeat.
  auto again = c().CreateVolume(CreateReq("vm-rbd-disk", 32 * kMiB));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->volume().volume_id(), vol.volume_id());
  EXPECT_EQ(c().CreateVolume(CreateReq("vm-rbd-disk", 64 * kMiB)).status().code(),
            StatusCode::kAlreadyExists);

  std::string want;
  {
    auto dev = OpenImage(vol);
    ASSERT_TRUE(dev);
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 0, 4 * kMiB, 1).ok());
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 28 * kMiB, 4 * kMiB, 2).ok());
    auto d = vdisk::pooltest::Digest(*dev);
    ASSERT_TRUE(d.ok());
    want = *d;
  }
  v1::CreateSnapshotRequest sreq;
  sreq.set_name("vm-rbd-snap");
  sreq.set_source_volume_id(vol.volume_id());
  *sreq.mutable_secrets() = Secrets();
  auto snap = c().CreateSnapshot(sreq);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE(snap->snapshot().ready_to_use());
  EXPECT_EQ(snap->snapshot().size_bytes(), 32 * kMiB);
  auto snap2 = c().CreateSnapshot(sreq);
  ASSERT_TRUE(snap2.ok()) << snap2.status();
  EXPECT_EQ(snap2->snapshot().snapshot_id(), snap->snapshot().snapshot_id());
  {  // change the origin after the snapshot
    auto dev = OpenImage(vol);
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 0, kMiB, 3).ok());
  }

  auto rreq = CreateReq("vm-rbd-restored", 48 * kMiB);
  rreq.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
      snap->snapshot().snapshot_id());
  auto restored = c().CreateVolume(rreq);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->volume().capacity_bytes(), 48 * kMiB);
  EXPECT_TRUE(restored->volume().content_source().has_snapshot());
  {
    auto dev = OpenImage(restored->volume());
    ASSERT_TRUE(dev);
    auto d = vdisk::pooltest::Digest(*dev, 32 * kMiB);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, want) << "restore is byte-identical to the snapshot";
    EXPECT_TRUE(vdisk::pooltest::CheckZeroes(*dev, 32 * kMiB, 16 * kMiB).ok());
  }

  auto creq = CreateReq("vm-rbd-clone", 0);
  creq.mutable_volume_content_source()->mutable_volume()->set_volume_id(vol.volume_id());
  auto clone = c().CreateVolume(creq);
  ASSERT_TRUE(clone.ok()) << clone.status();
  EXPECT_EQ(clone->volume().capacity_bytes(), 32 * kMiB);
  {
    auto a = OpenImage(vol);
    auto b = OpenImage(clone->volume());
    ASSERT_TRUE(a && b);
    auto da = vdisk::pooltest::Digest(*a);
    auto db = vdisk::pooltest::Digest(*b);
    ASSERT_TRUE(da.ok() && db.ok());
    EXPECT_EQ(*da, *db);
  }

  v1::ControllerExpandVolumeRequest ereq;
  ereq.set_volume_id(vol.volume_id());
  ereq.mutable_capacity_range()->set_required_bytes(64 * kMiB);
  *ereq.mutable_secrets() = Secrets();
  auto expanded = c().ControllerExpandVolume(ereq);
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->capacity_bytes(), 64 * kMiB);

  v1::GetCapacityRequest cap;
  (*cap.mutable_parameters())["pool"] = "ceph";
  auto capacity = c().GetCapacity(cap);
  ASSERT_TRUE(capacity.ok()) << capacity.status();
  EXPECT_GT(capacity->available_capacity(), 0);

  v1::ListVolumesRequest lv;
  auto listed = c().ListVolumes(lv);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->entries_size(), 3);

  // Deleting the snapshot with a live restored child works and leaves the child intact.
  v1::DeleteSnapshotRequest dreq;
  dreq.set_snapshot_id(snap->snapshot().snapshot_id());
  *dreq.mutable_secrets() = Secrets();
  ASSERT_TRUE(c().DeleteSnapshot(dreq).ok());
  ASSERT_TRUE(c().DeleteSnapshot(dreq).ok());
  {
    auto dev = OpenImage(restored->volume());
    auto d = vdisk::pooltest::Digest(*dev, 32 * kMiB);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, want);
  }
}

TEST_F(RbdCsiTest, RestartsSecretsAndTheNodeWithoutKernelRbd) {
  auto created = c().CreateVolume(CreateReq("vm-rbd-restart", 16 * kMiB));
  ASSERT_TRUE(created.ok()) << created.status() << driver_->Log();
  // The driver restarts with no credentials of its own: the CSI secrets carry them.
  RestartDriver(/*with_keyring=*/false);
  auto again = c().CreateVolume(CreateReq("vm-rbd-restart", 16 * kMiB));
  ASSERT_TRUE(again.ok()) << again.status() << driver_->Log();
  EXPECT_EQ(again->volume().volume_id(), created->volume().volume_id());
  auto bad = CreateReq("vm-rbd-badkey", 16 * kMiB);
  std::string key = env_.driver_key;
  key[key.size() - 6] = key[key.size() - 6] == 'A' ? 'B' : 'A';
  (*bad.mutable_secrets())["userKey"] = key;
  auto refused = c().CreateVolume(bad);
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied) << refused.status();
  EXPECT_EQ(driver_->Log().find(key), std::string::npos) << "a key reached the log";
  EXPECT_EQ(driver_->Log().find(env_.driver_key), std::string::npos) << "a key reached the log";
  RestartDriver(/*with_keyring=*/true);

  // The node side: no kernel RBD here, so staging a Block volume fails with a clear reason.
  if (::access("/sys/bus/rbd", F_OK) != 0) {
    v1::NodeStageVolumeRequest st;
    st.set_volume_id(created->volume().volume_id());
    ASSERT_EQ(::mkdir((*scratch_ / "kubelet").c_str(), 0750), 0);
    st.set_staging_target_path(*scratch_ / "kubelet/staging");
    *st.mutable_volume_capability() = Cap(true, Mode::MULTI_NODE_MULTI_WRITER);
    *st.mutable_secrets() = Secrets();
    auto staged = c().NodeStageVolume(st);
    EXPECT_EQ(staged.status().code(), StatusCode::kFailedPrecondition) << staged.status();
    EXPECT_NE(std::string(staged.status().message()).find("kernel RBD"), std::string::npos)
        << staged.status();
  }
  v1::DeleteVolumeRequest d;
  d.set_volume_id(created->volume().volume_id());
  *d.mutable_secrets() = Secrets();
  ASSERT_TRUE(c().DeleteVolume(d).ok());
  RestartDriver();
  ASSERT_TRUE(c().DeleteVolume(d).ok()) << "idempotent across a restart";
}

// SnapshotMetadata on RBD: rbd_diff_iterate2, whole objects (4 MiB) while fast-diff is valid.
TEST_F(RbdCsiTest, SnapshotMetadataDeltaAndAllocated) {
  auto vol = Vol("vm-rbd-cbt", 64 * kMiB);
  auto other = Vol("vm-rbd-cbt-other", 8 * kMiB);
  {
    auto dev = OpenImage(vol);
    ASSERT_TRUE(dev);
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 0, 4 * kMiB, 1).ok());
  }
  auto s1 = Snap("vm-rbd-cbt-1", vol);
  {
    auto dev = OpenImage(vol);
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 20 * kMiB, 64 * 1024, 2).ok());
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 40 * kMiB + 8192, 4096, 3).ok());
  }
  auto s2 = Snap("vm-rbd-cbt-2", vol);
  auto so = Snap("vm-rbd-cbt-o", other);

  auto d = Delta(c(), s1.snapshot_id(), s2.snapshot_id());
  ASSERT_TRUE(d.status.ok()) << d.status << driver_->Log();
  EXPECT_EQ(d.type, v1::VARIABLE_LENGTH);
  EXPECT_EQ(d.capacity, 64 * kMiB);
  EXPECT_TRUE(d.Covers(20 * kMiB, 64 * 1024));
  EXPECT_TRUE(d.Covers(40 * kMiB + 8192, 4096));
  EXPECT_TRUE(d.Avoids(0, 20 * kMiB)) << "an unchanged object reported";
  EXPECT_TRUE(d.Avoids(24 * kMiB, 16 * kMiB));
  EXPECT_TRUE(d.Avoids(44 * kMiB, 20 * kMiB));
  EXPECT_LE(d.bytes(), 8 * kMiB) << "at most the two objects written";

  auto a = Allocated(c(), s1.snapshot_id());
  ASSERT_TRUE(a.status.ok()) << a.status;
  EXPECT_TRUE(a.Covers(0, 4 * kMiB));
  EXPECT_TRUE(a.Avoids(4 * kMiB, 60 * kMiB));
  auto paged = Delta(c(), s1.snapshot_id(), s2.snapshot_id(), 0, 1);
  ASSERT_TRUE(paged.status.ok());
  EXPECT_EQ(paged.extents, d.extents);
  auto resumed = Delta(c(), s1.snapshot_id(), s2.snapshot_id(), 30 * kMiB);
  ASSERT_TRUE(resumed.status.ok());
  EXPECT_TRUE(resumed.Avoids(0, 30 * kMiB));
  EXPECT_TRUE(resumed.Covers(40 * kMiB + 8192, 4096));

  EXPECT_EQ(Delta(c(), so.snapshot_id(), s2.snapshot_id()).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Delta(c(), s2.snapshot_id(), s1.snapshot_id()).status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Delta(c(), s1.snapshot_id(), s2.snapshot_id(), 65 * kMiB).status.code(), StatusCode::kOutOfRange);
  v1::DeleteSnapshotRequest del;
  del.set_snapshot_id(s1.snapshot_id());
  *del.mutable_secrets() = Secrets();
  ASSERT_TRUE(c().DeleteSnapshot(del).ok());
  EXPECT_EQ(Delta(c(), s1.snapshot_id(), s2.snapshot_id()).status.code(), StatusCode::kNotFound);
}

// A group of two images written by one writer in alternation (write n to A, wait, n to B)
// through vdisk's vhost-user exports: every writer holds its acknowledgements while the member
// snapshots are taken (RADOS watch/notify), so the group is one point in time: a-1 <= b <= a.
// Then the same with a writer that is not vdisk (its own librbd): the group is reported
// sequential, and the writer sees no error.
TEST_F(RbdCsiTest, GroupSnapshotIsHeldAcrossExportsAndMembersStandAlone) {
  auto vhost_vol = [&](const std::string& name) {
    auto req = CreateReq(name, 8 * kMiB, Mode::SINGLE_NODE_WRITER);
    req.clear_volume_capabilities();
    *req.add_volume_capabilities() = Cap(false, Mode::SINGLE_NODE_WRITER);  // vhost-user: Filesystem
    (*req.mutable_parameters())["attach"] = "vhost-user";
    auto r = c().CreateVolume(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->volume() : v1::Volume();
  };
  auto a = vhost_vol("vm-rbd-grp-a"), b = vhost_vol("vm-rbd-grp-b");
  const std::string kubelet = *scratch_ / "kubelet";
  auto export_of = [&](const v1::Volume& v, const std::string& tag) {
    const std::string staging = kubelet + "/plugins/staging-" + tag, parent = kubelet + "/pods/" + tag;
    EXPECT_TRUE(fs::MakeDirs(staging).ok());
    EXPECT_TRUE(fs::MakeDirs(parent).ok());
    const v1::VolumeCapability cap = Cap(false, Mode::SINGLE_NODE_WRITER);
    EXPECT_TRUE(StageWithContext(c(), v, staging, cap).ok());
    auto p = PublishWithContext(c(), v, staging, parent + "/vol", cap);
    EXPECT_TRUE(p.ok()) << p;
    return std::make_pair(staging, parent + "/vol");
  };
  auto ea = export_of(a, "ga"), eb = export_of(b, "gb");
  VhostClient va, vb;
  ASSERT_TRUE(va.ConnectIn(ea.second, kVhostSocketName).ok());
  ASSERT_TRUE(va.Setup(1).ok());
  ASSERT_TRUE(vb.ConnectIn(eb.second, kVhostSocketName).ok());
  ASSERT_TRUE(vb.Setup(1).ok());

  AlternatingWriter writer(va, vb);
  auto group = [&](const std::string& name, std::vector<std::string> vols) {
    v1::CreateVolumeGroupSnapshotRequest req;
    req.set_name(name);
    for (const auto& v : vols) req.add_source_volume_ids(v);
    *req.mutable_secrets() = Secrets();
    return c().CreateVolumeGroupSnapshot(req);
  };
  std::vector<v1::VolumeGroupSnapshot> groups;
  for (int i = 0; i < 3; ++i) {
    writer.WaitFor(10 * (i + 1));
    auto g = group("vm-rbd-grp-" + std::to_string(i), {a.volume_id(), b.volume_id()});
    ASSERT_TRUE(g.ok()) << g.status() << driver_->Log();
    groups.push_back(g->group_snapshot());
  }
  writer.Stop();
  EXPECT_EQ(writer.failures(), 0);
  EXPECT_NE(driver_->Log().find("consistency=held"), std::string::npos) << "the exports must have held";
  EXPECT_EQ(driver_->Log().find("consistency=sequential"), std::string::npos);

  auto seq_of = [&](const v1::Snapshot& s, const std::string& name) -> uint64_t {
    auto r = RestoreOf(name, s);  // a clone of the member snapshot: usable alone
    auto dev = OpenImage(r);
    if (!dev) return 0;
    std::vector<std::byte> block(4096);
    EXPECT_TRUE(blockdev::ReadAt(*dev, 0, block).ok());
    return AlternatingWriter::SequenceOf(block.data());
  };
  for (size_t i = 0; i < groups.size(); ++i) {
    const auto& g = groups[i];
    ASSERT_EQ(g.snapshots_size(), 2);
    EXPECT_TRUE(g.ready_to_use());
    for (const auto& s : g.snapshots()) EXPECT_EQ(s.group_snapshot_id(), g.group_snapshot_id());
    const uint64_t an = seq_of(g.snapshots(0), "vm-rbd-grp-ra-" + std::to_string(i));
    const uint64_t bn = seq_of(g.snapshots(1), "vm-rbd-grp-rb-" + std::to_string(i));
    EXPECT_TRUE(bn <= an && an <= bn + 1) << "group " << i << ": A holds " << an << ", B holds " << bn;
    EXPECT_GT(an, 0u);
  }
  // Members feed changed-block tracking like any snapshot.
  auto d = Delta(c(), groups[0].snapshots(0).snapshot_id(), groups[2].snapshots(0).snapshot_id());
  EXPECT_TRUE(d.status.ok()) << d.status;
  EXPECT_TRUE(d.Covers(0, 4096));

  // A writer that is not vdisk: the group is taken, reported sequential, the writer unharmed.
  {
    auto dev = OpenImage(b);
    ASSERT_TRUE(dev);
    std::atomic<bool> stop2{false};
    std::atomic<int> failures2{0};
    std::thread foreign([&] {
      std::vector<std::byte> block(4096);
      while (!stop2.load())
        if (!blockdev::WriteAt(*dev, 4 * kMiB, block).ok()) failures2++;
    });
    auto g = group("vm-rbd-grp-foreign", {a.volume_id(), b.volume_id()});
    stop2 = true;
    foreign.join();
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(failures2.load(), 0);
    EXPECT_NE(driver_->Log().find("consistency=sequential"), std::string::npos);
  }

  // Idempotent by name, taken for other volumes, Get, Delete (members go with it).
  auto again = group("vm-rbd-grp-0", {a.volume_id(), b.volume_id()});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->group_snapshot().group_snapshot_id(), groups[0].group_snapshot_id());
  EXPECT_EQ(group("vm-rbd-grp-0", {a.volume_id()}).status().code(), StatusCode::kAlreadyExists);
  v1::GetVolumeGroupSnapshotRequest get;
  get.set_group_snapshot_id(groups[1].group_snapshot_id());
  *get.mutable_secrets() = Secrets();
  auto got = c().GetVolumeGroupSnapshot(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->group_snapshot().snapshots_size(), 2);
  v1::DeleteVolumeGroupSnapshotRequest del;
  del.set_group_snapshot_id(groups[1].group_snapshot_id());
  *del.mutable_secrets() = Secrets();
  ASSERT_TRUE(c().DeleteVolumeGroupSnapshot(del).ok());
  ASSERT_TRUE(c().DeleteVolumeGroupSnapshot(del).ok());
  EXPECT_EQ(c().GetVolumeGroupSnapshot(get).status().code(), StatusCode::kNotFound);
  v1::GetSnapshotRequest gs;
  gs.set_snapshot_id(groups[1].snapshots(0).snapshot_id());
  *gs.mutable_secrets() = Secrets();
  EXPECT_EQ(c().GetSnapshot(gs).status().code(), StatusCode::kNotFound);

  va.Close();
  vb.Close();
  for (const auto& [v, e] : {std::make_pair(a, ea), std::make_pair(b, eb)}) {
    v1::NodeUnpublishVolumeRequest up;
    up.set_volume_id(v.volume_id());
    up.set_target_path(e.second);
    EXPECT_TRUE(c().NodeUnpublishVolume(up).ok());
    v1::NodeUnstageVolumeRequest us;
    us.set_volume_id(v.volume_id());
    us.set_staging_target_path(e.first);
    EXPECT_TRUE(c().NodeUnstageVolume(us).ok());
  }
}

// QoS on RBD: the mutable parameters become the image's librbd QoS (image metadata), which any
// librbd client obeys, and change with ControllerModifyVolume.
TEST_F(RbdCsiTest, QosBecomesLibrbdImageQos) {
  auto vol = Vol("vm-rbd-qos", 16 * kMiB, {{"writeIopsLimit", "100"}});
  EXPECT_EQ(ImageMeta(vol, "conf_rbd_qos_write_iops_limit"), "100");
  EXPECT_EQ(ImageMeta(vol, "conf_rbd_qos_iops_limit"), "");
  auto writes_in = [&](double seconds) {
    auto dev = OpenImage(vol);  // a librbd client of its own, like QEMU's
    if (!dev) return int64_t{0};
    auto q = dev->open_queue(8);
    EXPECT_TRUE(q.ok());
    std::vector<std::vector<std::byte>> bufs(8, std::vector<std::byte>(4096));
    int64_t done = 0, issued = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      while ((*q)->in_flight() < 8) {
        (*q)->write(static_cast<uint64_t>(issued % 4096) * 4096, bufs[issued % 8], [&](Status s) {
          EXPECT_TRUE(s.ok()) << s;
          ++done;
        });
        ++issued;
      }
      EXPECT_TRUE((*q)->submit().ok());
      EXPECT_TRUE((*q)->poll(1, 100).ok());
    }
    const int64_t in_time = done;
    EXPECT_TRUE((*q)->drain().ok());
    return in_time;
  };
  const int64_t limited = writes_in(3.0);
  EXPECT_GE(limited, 200);
  EXPECT_LE(limited, 420) << "100 writes/s for 3 s (librbd's throttle)";

  v1::ControllerModifyVolumeRequest m;
  m.set_volume_id(vol.volume_id());
  *m.mutable_secrets() = Secrets();
  (*m.mutable_mutable_parameters())["writeIopsLimit"] = "0";
  (*m.mutable_mutable_parameters())["bpsLimit"] = "64Mi";
  ASSERT_TRUE(c().ControllerModifyVolume(m).ok());
  EXPECT_EQ(ImageMeta(vol, "conf_rbd_qos_write_iops_limit"), "");
  EXPECT_EQ(ImageMeta(vol, "conf_rbd_qos_bps_limit"), std::to_string(64 << 20));
  // Throttled at 100/s, 4 s allow at most ~500 writes (the limit plus one burst); the same
  // queue unthrottled does several hundred per second even on a loaded 2-core machine.
  EXPECT_GT(writes_in(4.0), 600) << "the limit was lifted";
  (*m.mutable_mutable_parameters())["bogus"] = "1";
  EXPECT_EQ(c().ControllerModifyVolume(m).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RbdCsiTest, VhostUserFilesystemVolumeServesTheImageAtKubeletsPath) {
  namespace vh = blockdev::vhost;
  auto req = CreateReq("vm-rbd-vhost", 16 * kMiB, Mode::SINGLE_NODE_WRITER);
  req.clear_volume_capabilities();
  *req.add_volume_capabilities() = Cap(false, Mode::SINGLE_NODE_WRITER);
  (*req.mutable_parameters())["attach"] = "vhost-user";
  auto created = c().CreateVolume(req);
  ASSERT_TRUE(created.ok()) << created.status() << driver_->Log();
  const v1::Volume vol = created->volume();
  const std::string kubelet = *scratch_ / "kubelet";
  const std::string staging = kubelet + "/plugins/kubernetes.io/csi/vdisk.csi.io/0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0/globalmount";
  const std::string target = kubelet + "/pods/3c1b6f0e-8d2a-4e7b-9f1c-5a6d7e8f9a0b/volumes/kubernetes.io~csi/"
                             "pvc-7e9d1c2b-4a3f-4b6e-8c5d-1f2e3a4b5c6d/mount";
  ASSERT_GE(target.size(), 140u);
  ASSERT_TRUE(fs::MakeDirs(staging, 0750).ok());
  ASSERT_TRUE(fs::MakeDirs(target.substr(0, target.rfind('/')), 0750).ok());
  v1::NodeStageVolumeRequest st;
  st.set_volume_id(vol.volume_id());
  st.set_staging_target_path(staging);
  *st.mutable_volume_capability() = Cap(false, Mode::SINGLE_NODE_WRITER);
  *st.mutable_volume_context() = vol.volume_context();
  *st.mutable_secrets() = Secrets();
  auto staged = c().NodeStageVolume(st);
  ASSERT_TRUE(staged.ok()) << staged.status() << "\n" << driver_->Log();
  v1::NodePublishVolumeRequest pub;
  pub.set_volume_id(vol.volume_id());
  pub.set_staging_target_path(staging);
  pub.set_target_path(target);
  *pub.mutable_volume_capability() = Cap(false, Mode::SINGLE_NODE_WRITER);
  *pub.mutable_volume_context() = vol.volume_context();
  *pub.mutable_secrets() = Secrets();
  auto published = c().NodePublishVolume(pub);
  ASSERT_TRUE(published.ok()) << published.status() << "\n" << driver_->Log();

  // A front end reaches the socket through the target; what it writes is in the image.
  std::string data(128 * 1024, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 31 + 7);
  auto io = [&](vh::testing::VhostClient& vc, uint32_t type, std::string* buf) {
    const uint64_t scratch = vh::testing::VhostClient::kDataBase;
    const uint32_t len = static_cast<uint32_t>(buf->size());
    auto layout = vc.Layout(scratch, len);
    if (type == vh::kBlkTOut) std::memcpy(vc.ram().at(layout.data_gpa), buf->data(), len);
    vc.Submit(0, type, (4 * kMiB) / 512, scratch, len, type == vh::kBlkTIn);
    vc.Kick(0);
    if (vc.WaitUsed(0, 1, 20000).size() != 1) return uint8_t{0xff};
    if (type == vh::kBlkTIn) std::memcpy(buf->data(), vc.ram().at(layout.data_gpa), len);
    return vc.StatusByte(scratch, len);
  };
  {
    vh::testing::VhostClient vc;
    ASSERT_TRUE(vc.ConnectIn(target, kVhostSocketName).ok());
    ASSERT_TRUE(vc.Setup(1).ok());
    std::string w = data;
    ASSERT_EQ(io(vc, vh::kBlkTOut, &w), vh::kBlkSOk);
  }
  {
    auto image = OpenImage(vol);
    ASSERT_NE(image, nullptr);
    std::string got(data.size(), '\0');
    ASSERT_TRUE(blockdev::ReadAt(*image, 4 * kMiB, std::as_writable_bytes(std::span(got))).ok());
    EXPECT_TRUE(got == data) << "the bytes written through the socket are not in the RBD image";
  }
  // The node plugin dies; the restarted one serves the image again behind the same target.
  KillAndRestartDriver();
  {
    vh::testing::VhostClient vc;
    ASSERT_TRUE(vc.ConnectIn(target, kVhostSocketName).ok()) << driver_->Log();
    ASSERT_TRUE(vc.Setup(1).ok());
    std::string r(data.size(), '\0');
    ASSERT_EQ(io(vc, vh::kBlkTIn, &r), vh::kBlkSOk);
    EXPECT_TRUE(r == data);
    auto t0 = std::chrono::steady_clock::now();
    std::string w = data;
    EXPECT_EQ(io(vc, vh::kBlkTOut, &w), vh::kBlkSOk);
    std::cerr << "first write after the kill took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
              << " ms\n";
  }
  v1::NodeUnpublishVolumeRequest up;
  up.set_volume_id(vol.volume_id());
  up.set_target_path(target);
  ASSERT_TRUE(c().NodeUnpublishVolume(up).ok());
  v1::NodeUnstageVolumeRequest us;
  us.set_volume_id(vol.volume_id());
  us.set_staging_target_path(staging);
  ASSERT_TRUE(c().NodeUnstageVolume(us).ok());
  v1::DeleteVolumeRequest d;
  d.set_volume_id(vol.volume_id());
  *d.mutable_secrets() = Secrets();
  auto t0 = std::chrono::steady_clock::now();
  auto deleted = c().DeleteVolume(d);
  std::cerr << "delete: " << deleted.status() << " after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
            << " ms\n";
}

// The capacity a vhost-user front end sees through the published directory at `target` (0 if
// the export does not answer).
uint64_t ExportCapacity(const std::string& target) {
  blockdev::vhost::testing::VhostClient vc;
  if (!vc.ConnectIn(target, kVhostSocketName).ok() || !vc.Setup(1).ok()) return 0;
  auto cfg = vc.GetConfig(0, sizeof(blockdev::vhost::BlkConfig));
  if (!cfg.ok() || cfg->size() != sizeof(blockdev::vhost::BlkConfig)) return 0;
  blockdev::vhost::BlkConfig bc;
  std::memcpy(&bc, cfg->data(), sizeof(bc));
  return bc.capacity * 512;
}

TEST_F(RbdCsiTest, CallsWithoutCredentialsAreRefusedNotRunAsTheConfsDefaultIdentity) {
  // The pool has no identity of its own; the test cluster's ceph.conf names client.admin's
  // keyring in [client], which a call without secrets used to run as.
  RestartDriver(/*with_keyring=*/false);
  auto req = CreateReq("vm-rbd-anonymous", 16 * kMiB);
  req.clear_secrets();
  auto refused = c().CreateVolume(req);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated) << refused.status();
  EXPECT_NE(std::string(refused.status().message()).find("provisioner-secret-name"), std::string::npos)
      << refused.status();
  v1::GetCapacityRequest cap;
  (*cap.mutable_parameters())["pool"] = "ceph";
  EXPECT_EQ(c().GetCapacity(cap).status().code(), StatusCode::kUnauthenticated);
  // Calls that carry no secrets by design still answer for the other pools (none here).
  auto listed = c().ListVolumes(v1::ListVolumesRequest());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->entries_size(), 0);
  EXPECT_TRUE(c().ListSnapshots(v1::ListSnapshotsRequest()).ok());
  EXPECT_TRUE(c().Probe().ok());
  // With the secrets it works.
  auto created = c().CreateVolume(CreateReq("vm-rbd-anonymous", 16 * kMiB));
  ASSERT_TRUE(created.ok()) << created.status();
  v1::DeleteVolumeRequest d;
  d.set_volume_id(created->volume().volume_id());
  *d.mutable_secrets() = Secrets();
  ASSERT_TRUE(c().DeleteVolume(d).ok());

  // Half an identity in the configuration stops the driver at start-up.
  driver_->Stop();
  DriverProcess half(std::vector<std::string>{"--endpoint", endpoint_, "--node-id", "rbd-node", "--pool",
                                              absl::StrCat(pool_flag_, ",user=", env_.driver_user),
                                              "--state-dir", *scratch_ / "state"},
                     *scratch_ / "half.log", endpoint_);
  std::string error;
  EXPECT_FALSE(half.Start(&error));
  EXPECT_NE(error.find("keyring"), std::string::npos) << error;
  StartDriver(/*with_keyring=*/true);
}

TEST_F(RbdCsiTest, NodeLifecycleWithCredentialsOnlyFromSecrets) {
  RestartDriver(/*with_keyring=*/false, /*bare_node=*/true);
  // A Filesystem volume served as vhost-user-blk (the attachment a node without krbd has).
  auto cap = Cap(false, Mode::SINGLE_NODE_SINGLE_WRITER);
  auto req = CreateReq("vm-rbd-node", 16 * kMiB, Mode::SINGLE_NODE_SINGLE_WRITER);
  *req.mutable_volume_capabilities(0) = cap;
  (*req.mutable_parameters())["attach"] = "vhost-user";
  auto created = c().CreateVolume(req);
  ASSERT_TRUE(created.ok()) << created.status() << driver_->Log();
  const v1::Volume vol = created->volume();
  const std::string kubelet = *scratch_ / "kubelet";
  const std::string staging = kubelet + "/staging";
  ASSERT_TRUE(fs::MakeDirs(staging, 0750).ok());
  ASSERT_TRUE(fs::MakeDirs(kubelet + "/pods/p1", 0750).ok());
  ASSERT_TRUE(fs::MakeDirs(kubelet + "/pods/p2", 0750).ok());
  const std::string t1 = kubelet + "/pods/p1/mount", t2 = kubelet + "/pods/p2/mount";

  // kubelet: NodeStage with the StorageClass's node-stage secret, everything else without secrets.
  v1::NodeStageVolumeRequest st;
  st.set_volume_id(vol.volume_id());
  st.set_staging_target_path(staging);
  *st.mutable_volume_capability() = cap;
  *st.mutable_volume_context() = vol.volume_context();
  *st.mutable_secrets() = Secrets();
  auto staged = c().NodeStageVolume(st);
  ASSERT_TRUE(staged.ok()) << staged.status() << driver_->Log();
  const std::string kept = *scratch_ / ("state/credentials/" + vol.volume_id() + ".json");
  struct stat kst;
  ASSERT_EQ(::stat(kept.c_str(), &kst), 0) << "the node keeps the stage secrets for the calls without any";
  EXPECT_EQ(kst.st_mode & 0777, 0600u);

  auto publish = [&](const std::string& target) {
    v1::NodePublishVolumeRequest p;
    p.set_volume_id(vol.volume_id());
    p.set_staging_target_path(staging);
    p.set_target_path(target);
    *p.mutable_volume_capability() = cap;
    *p.mutable_volume_context() = vol.volume_context();
    return c().NodePublishVolume(p).status();
  };
  ASSERT_TRUE(publish(t1).ok()) << driver_->Log();
  EXPECT_EQ(ExportCapacity(t1), static_cast<uint64_t>(16 * kMiB)) << "the export opened the image";
  EXPECT_EQ(publish(t2).code(), StatusCode::kFailedPrecondition) << "ReadWriteOncePod: one publish per node";

  v1::NodeGetVolumeStatsRequest stats;
  stats.set_volume_id(vol.volume_id());
  stats.set_volume_path(t1);
  auto got = c().NodeGetVolumeStats(stats);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->usage(0).total(), 16 * kMiB);

  v1::ControllerExpandVolumeRequest grow;
  grow.set_volume_id(vol.volume_id());
  grow.mutable_capacity_range()->set_required_bytes(32 * kMiB);
  *grow.mutable_secrets() = Secrets();  // controller-expand secret
  ASSERT_TRUE(c().ControllerExpandVolume(grow).ok());
  v1::NodeExpandVolumeRequest nexp;  // no node-expand secret
  nexp.set_volume_id(vol.volume_id());
  nexp.set_volume_path(t1);
  auto grown = c().NodeExpandVolume(nexp);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(grown->capacity_bytes(), 32 * kMiB);

  // A plugin restart (DaemonSet rolling update): the export is served again at start-up, with
  // the credentials the node kept; the plugin still has none of its own.
  RestartDriver(/*with_keyring=*/false, /*bare_node=*/true);
  EXPECT_EQ(ExportCapacity(t1), static_cast<uint64_t>(32 * kMiB)) << driver_->Log();
  EXPECT_EQ(driver_->Log().find(env_.driver_key), std::string::npos) << "a key reached the log";

  // The snapshotter's calls with the VolumeSnapshotClass's secret.
  v1::CreateSnapshotRequest snap;
  snap.set_name("vm-rbd-node-snap");
  snap.set_source_volume_id(vol.volume_id());
  *snap.mutable_secrets() = Secrets();
  auto taken = c().CreateSnapshot(snap);
  ASSERT_TRUE(taken.ok()) << taken.status();
  v1::GetSnapshotRequest get;
  get.set_snapshot_id(taken->snapshot().snapshot_id());
  *get.mutable_secrets() = Secrets();
  EXPECT_TRUE(c().GetSnapshot(get).ok());
  get.clear_secrets();
  EXPECT_EQ(c().GetSnapshot(get).status().code(), StatusCode::kUnauthenticated);
  v1::DeleteSnapshotRequest drop;
  drop.set_snapshot_id(taken->snapshot().snapshot_id());
  *drop.mutable_secrets() = Secrets();
  ASSERT_TRUE(c().DeleteSnapshot(drop).ok());

  v1::NodeUnpublishVolumeRequest up;
  up.set_volume_id(vol.volume_id());
  up.set_target_path(t1);
  ASSERT_TRUE(c().NodeUnpublishVolume(up).ok());
  v1::NodeUnstageVolumeRequest us;
  us.set_volume_id(vol.volume_id());
  us.set_staging_target_path(staging);
  ASSERT_TRUE(c().NodeUnstageVolume(us).ok());
  EXPECT_NE(::stat(kept.c_str(), &kst), 0) << "unstage forgets the kept secrets";

  v1::DeleteVolumeRequest d;
  d.set_volume_id(vol.volume_id());
  *d.mutable_secrets() = Secrets();
  ASSERT_TRUE(c().DeleteVolume(d).ok());
}

TEST_F(RbdCsiTest, CapacityAndModesAreHonest) {
  // Beyond what an RBD image can hold (librbd's object map limit): OUT_OF_RANGE, not EINVAL.
  auto huge = c().CreateVolume(CreateReq("vm-rbd-4eib", 1ll << 62));
  EXPECT_EQ(huge.status().code(), StatusCode::kOutOfRange) << huge.status();
  // Within it but past what the pool may promise (200% of a ~10 GiB test cluster).
  auto over = c().CreateVolume(CreateReq("vm-rbd-100tib", 100ll << 40));
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted) << over.status();
  v1::GetCapacityRequest cap;
  (*cap.mutable_parameters())["pool"] = "ceph";
  auto before = c().GetCapacity(cap);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(before->available_capacity(), 0);
  EXPECT_LT(before->available_capacity(), 100ll << 40);
  EXPECT_LE(before->maximum_volume_size().value(), before->available_capacity());
  auto one = c().CreateVolume(CreateReq("vm-rbd-1g", 1ll << 30));
  ASSERT_TRUE(one.ok()) << one.status();
  auto after = c().GetCapacity(cap);
  ASSERT_TRUE(after.ok());
  EXPECT_LE(after->available_capacity(), before->available_capacity() - (1ll << 30) + (64ll << 20))
      << "the new volume is promised (the cluster's free space moves a little meanwhile)";

  // No node attachment vdisk has puts a file system on an RBD image: Filesystem mode is refused
  // at CreateVolume with the reason, reported as no capacity, and not confirmed.
  v1::CreateVolumeRequest fs = CreateReq("vm-rbd-fs", 16 * kMiB, Mode::SINGLE_NODE_WRITER);
  *fs.mutable_volume_capabilities(0) = Cap(false, Mode::SINGLE_NODE_WRITER);
  auto refused = c().CreateVolume(fs);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status();
  EXPECT_NE(std::string(refused.status().message()).find("Block"), std::string::npos) << refused.status();
  *cap.add_volume_capabilities() = Cap(false, Mode::SINGLE_NODE_WRITER);
  auto fs_cap = c().GetCapacity(cap);
  ASSERT_TRUE(fs_cap.ok());
  EXPECT_EQ(fs_cap->available_capacity(), 0);
  // With the user-space attachment, which serves Filesystem volumes, they are offered.
  (*cap.mutable_parameters())["attach"] = "vhost-user";
  auto vhost_cap = c().GetCapacity(cap);
  ASSERT_TRUE(vhost_cap.ok()) << vhost_cap.status();
  EXPECT_GT(vhost_cap->available_capacity(), 0);
  v1::ValidateVolumeCapabilitiesRequest val;
  val.set_volume_id(one->volume().volume_id());
  *val.add_volume_capabilities() = Cap(true, Mode::SINGLE_NODE_WRITER);
  *val.mutable_secrets() = Secrets();
  auto ok = c().ValidateVolumeCapabilities(val);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->has_confirmed()) << ok->message();
}

}  // namespace
}  // namespace vdisk::csi::testing
