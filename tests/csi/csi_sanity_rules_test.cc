// The rules of the kubernetes-csi sanity suite (csi-test v5, pkg/sanity: identity.go,
// controller.go including its ModifyVolume specs, groupcontroller.go, node.go), re-stated as our
// own tests because csi-sanity itself (Go) cannot run here. Each TEST names the sanity spec it
// mirrors. Like csi-sanity, the suite:
//   - runs the driver with only --endpoint/--node-id/--pool (no allowed target root; the pool
//     without an over-provisioning limit, as docs/csi.md runs the real suite),
//   - uses 10 GiB volumes, a staging directory it creates and a target "<dir>/target" it does not,
//   - runs once with mount and once with block access type,
//   - cleans up after every test exactly as its Resources.Cleanup does: NodeUnpublish at the
//     target and NodeUnstage at the staging path for EVERY volume it created (OK or NOT_FOUND
//     accepted), then DeleteVolume (must succeed), snapshots first (LIFO).
#include <map>
#include <regex>
#include <set>

#include "tests/csi/csi_fixture.h"

namespace vdisk::csi::testing {
namespace {

using Ctl = v1::ControllerServiceCapability::RPC;
constexpr int64_t kSanitySize = 10 * kGiB;
constexpr int64_t kSanityExpand = kSanitySize + kGiB;
// csi-sanity's default IDGenerator produces ids like these.
constexpr char kFakeVolumeId[] = "fake-vol-id-8c4e7c0e-0b8a-4a5b-9a38-0f2c8f3b1d11";
constexpr char kFakeNodeId[] = "fake-node-id-2d0b";

class SanityRules : public CsiDriverTest, public ::testing::WithParamInterface<bool> {
 protected:
  std::vector<std::string> DriverArgs() override {
    // overprovisioning=off: sanity's 10 GiB volumes add up past twice a small CI disk (as
    // docs/csi.md says for running the real csi-sanity).
    return {"--endpoint", endpoint_, "--node-id", "sanity-node", "--pool",
            "name=local,kind=local,overprovisioning=off,root=" + (*scratch_ / "pool"), "--state-dir", *scratch_ / "state"};
  }
  void SetUp() override {
    CsiDriverTest::SetUp();
    if (IsSkipped()) return;
    staging_ = *scratch_ / "csi-staging";
    target_dir_ = *scratch_ / "csi-mount";
    ASSERT_TRUE(fs::MakeDirs(staging_).ok());
    ASSERT_TRUE(fs::MakeDirs(target_dir_).ok());
  }
  void TearDown() override {
    if (driver_ && driver_->running()) {
      for (auto it = resources_.rbegin(); it != resources_.rend(); ++it) {
        if (it->second) {
          v1::DeleteSnapshotRequest d;
          d.set_snapshot_id(it->first);
          auto r = c().DeleteSnapshot(d);
          EXPECT_TRUE(r.ok()) << "DeleteSnapshot failed: " << r.status();
          continue;
        }
        auto up = Unpublish(it->first, target());
        EXPECT_TRUE(up.ok() || up.code() == absl::StatusCode::kNotFound) << "NodeUnpublishVolume failed: " << up;
        auto us = Unstage(it->first, staging_);
        EXPECT_TRUE(us.ok() || us.code() == absl::StatusCode::kNotFound) << "NodeUnstageVolume failed: " << us;
        v1::DeleteVolumeRequest d;
        d.set_volume_id(it->first);
        auto r = c().DeleteVolume(d);
        EXPECT_TRUE(r.ok()) << "DeleteVolume failed: " << r.status();
      }
    }
    CsiDriverTest::TearDown();
  }

  bool block() const { return GetParam(); }
  std::string target() const { return target_dir_ + "/target"; }
  v1::VolumeCapability VCap() const { return Cap(block()); }

  StatusOr<v1::CreateVolumeResponse> Create(v1::CreateVolumeRequest req) {
    auto r = c().CreateVolume(req);
    if (r.ok()) resources_.push_back({r->volume().volume_id(), false});
    return r;
  }
  v1::CreateVolumeResponse MustCreateVolume(const std::string& name, int64_t required = kSanitySize,
                                            int64_t limit = 0) {
    auto req = CreateReq(name, required, block());
    if (limit) req.mutable_capacity_range()->set_limit_bytes(limit);
    auto r = Create(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::CreateVolumeResponse();
  }
  StatusOr<v1::CreateSnapshotResponse> Snap(const std::string& name, const std::string& vol) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_volume_id(vol);
    auto r = c().CreateSnapshot(req);
    if (r.ok()) resources_.push_back({r->snapshot().snapshot_id(), true});
    return r;
  }
  v1::Snapshot MustSnapshotFromNewVolume(const std::string& vname, const std::string& sname) {
    auto v = MustCreateVolume(vname, kSanitySize, kSanitySize);
    auto s = Snap(sname, v.volume().volume_id());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->snapshot() : v1::Snapshot();
  }
  static void VerifySnapshotInfo(const v1::Snapshot& s) {
    EXPECT_FALSE(s.snapshot_id().empty());
    EXPECT_FALSE(s.source_volume_id().empty());
    EXPECT_TRUE(s.has_creation_time() && (s.creation_time().seconds() != 0 || s.creation_time().nanos() != 0));
  }

  std::vector<std::pair<std::string, bool>> resources_;  // id, is_snapshot
  std::string staging_, target_dir_;
};

// --- identity.go ---------------------------------------------------------------------------------

TEST_P(SanityRules, Identity_GetPluginCapabilities_Probe_GetPluginInfo) {
  auto caps = c().GetPluginCapabilities();
  ASSERT_TRUE(caps.ok());
  for (const auto& cap : caps->capabilities()) {
    if (cap.has_service()) {
      // SNAPSHOT_METADATA_SERVICE is only listed with --snapshot-metadata (sanity does not know it).
      EXPECT_TRUE(cap.service().type() == v1::PluginCapability::Service::CONTROLLER_SERVICE ||
                  cap.service().type() == v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS ||
                  cap.service().type() == v1::PluginCapability::Service::GROUP_CONTROLLER_SERVICE)
          << cap.service().type();
    } else {
      ASSERT_TRUE(cap.has_volume_expansion());
      EXPECT_TRUE(cap.volume_expansion().type() == v1::PluginCapability::VolumeExpansion::ONLINE ||
                  cap.volume_expansion().type() == v1::PluginCapability::VolumeExpansion::OFFLINE);
    }
  }
  auto probe = c().Probe();
  ASSERT_TRUE(probe.ok());
  auto info = c().GetPluginInfo();
  ASSERT_TRUE(info.ok());
  EXPECT_LE(info->name().size(), 63u);
  EXPECT_TRUE(std::regex_match(info->name(), std::regex("^[a-zA-Z][A-Za-z0-9-\\.\\_]{0,61}[a-zA-Z]$")));
  EXPECT_FALSE(info->vendor_version().empty());
}

// --- controller.go: ControllerGetCapabilities, GetCapacity, ListVolumes --------------------------

TEST_P(SanityRules, Controller_Capabilities_OnlyKnownOnes) {
  auto caps = c().ControllerGetCapabilities();
  ASSERT_TRUE(caps.ok());
  // The values sanity v5.5 accepts; anything else fails "should return appropriate capabilities"
  // (v5.5 added GET_SNAPSHOT with its GetSnapshot specs, kubernetes-csi/csi-test#573).
  std::set<int> known{Ctl::CREATE_DELETE_VOLUME, Ctl::PUBLISH_UNPUBLISH_VOLUME, Ctl::LIST_VOLUMES,
                      Ctl::GET_CAPACITY, Ctl::CREATE_DELETE_SNAPSHOT, Ctl::LIST_SNAPSHOTS, Ctl::PUBLISH_READONLY,
                      Ctl::CLONE_VOLUME, Ctl::EXPAND_VOLUME, Ctl::LIST_VOLUMES_PUBLISHED_NODES, Ctl::GET_VOLUME,
                      Ctl::VOLUME_CONDITION, Ctl::SINGLE_NODE_MULTI_WRITER, Ctl::GET_SNAPSHOT, Ctl::MODIFY_VOLUME};
  for (const auto& cap : caps->capabilities()) {
    ASSERT_TRUE(cap.has_rpc());
    EXPECT_TRUE(known.contains(cap.rpc().type())) << cap.rpc().type();
  }
  EXPECT_TRUE(c().GetCapacity({}).ok());  // GetCapacity with no optional values
}

TEST_P(SanityRules, ListVolumes_InvalidTokenAborted_NewPresentDeletedAbsent) {
  v1::ListVolumesRequest bad;
  bad.set_starting_token("invalid-token");
  EXPECT_EQ(Code(c().ListVolumes(bad)), absl::StatusCode::kAborted);
  auto before = c().ListVolumes({});
  ASSERT_TRUE(before.ok());
  for (const auto& e : before->entries()) EXPECT_FALSE(e.volume().volume_id().empty());
  auto vol = MustCreateVolume("sanity", 0);
  EXPECT_EQ(c().ListVolumes({})->entries_size(), before->entries_size() + 1);
  v1::DeleteVolumeRequest d;
  d.set_volume_id(vol.volume().volume_id());
  ASSERT_TRUE(c().DeleteVolume(d).ok());
  EXPECT_EQ(c().ListVolumes({})->entries_size(), before->entries_size());
}

// --- controller.go: CreateVolume -----------------------------------------------------------------

TEST_P(SanityRules, CreateVolume_AllSpecs) {
  // should fail when no name is provided / no volume capabilities are provided
  auto noname = CreateReq("", 0, block());
  noname.clear_volume_capabilities();
  EXPECT_EQ(Code(Create(noname)), absl::StatusCode::kInvalidArgument);
  auto nocaps = CreateReq("sanity-controller-create-no-volume-capabilities", 0, block());
  nocaps.clear_volume_capabilities();
  EXPECT_EQ(Code(Create(nocaps)), absl::StatusCode::kInvalidArgument);
  // SingleNodeWriter NoCapacity / WithCapacity 1Gi
  MustCreateVolume("sanity-controller-create-single-no-capacity");
  auto with = MustCreateVolume("sanity-controller-create-single-with-capacity");
  EXPECT_GE(with.volume().capacity_bytes(), kSanitySize);
  // already existing name and same capacity -> same id; different capacity -> ALREADY_EXISTS
  auto v1a = MustCreateVolume("sanity-controller-create-twice");
  auto v1b = MustCreateVolume("sanity-controller-create-twice");
  EXPECT_EQ(v1a.volume().volume_id(), v1b.volume().volume_id());
  MustCreateVolume("sanity-controller-create-twice-different", kSanitySize, kSanitySize);
  auto diff = CreateReq("sanity-controller-create-twice-different", 2 * kSanitySize, block());
  diff.mutable_capacity_range()->set_limit_bytes(2 * kSanitySize);
  EXPECT_EQ(Code(Create(diff)), absl::StatusCode::kAlreadyExists);
  // maximum-length name
  auto maxlen = MustCreateVolume(std::string("sanity-controller-create-maxlen-") + std::string(128 - 32, 'x'));
  EXPECT_GE(maxlen.volume().capacity_bytes(), kSanitySize);
  // create volume from an existing source snapshot / volume; missing sources -> NOT_FOUND
  auto snap = MustSnapshotFromNewVolume("sanity-controller-source-vol", "sanity-controller-snap-from-vol");
  ASSERT_TRUE(snap.ready_to_use());
  auto from_snap = CreateReq("sanity-controller-vol-from-snap", kSanitySize, block());
  from_snap.mutable_capacity_range()->set_limit_bytes(kSanitySize);
  from_snap.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  EXPECT_TRUE(Create(from_snap).ok());
  auto missing_snap = CreateReq("sanity-controller-vol-from-missing-snap", kSanitySize, block());
  missing_snap.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("non-existing-snapshot-id");
  EXPECT_EQ(Code(Create(missing_snap)), absl::StatusCode::kNotFound);
  auto src = MustCreateVolume("sanity-controller-source-vol-2", kSanitySize, kSanitySize);
  auto from_vol = CreateReq("sanity-controller-vol-from-vol", kSanitySize, block());
  from_vol.mutable_capacity_range()->set_limit_bytes(kSanitySize);
  from_vol.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume().volume_id());
  EXPECT_TRUE(Create(from_vol).ok());
  auto missing_vol = CreateReq("sanity-controller-vol-from-missing-vol", kSanitySize, block());
  missing_vol.mutable_volume_content_source()->mutable_volume()->set_volume_id(kFakeVolumeId);
  EXPECT_EQ(Code(Create(missing_vol)), absl::StatusCode::kNotFound);
}

// --- controller.go: DeleteVolume, ValidateVolumeCapabilities, ControllerPublish ------------------

TEST_P(SanityRules, DeleteVolume_And_ValidateVolumeCapabilities) {
  v1::DeleteVolumeRequest d;
  EXPECT_EQ(Code(c().DeleteVolume(d)), absl::StatusCode::kInvalidArgument);
  d.set_volume_id("fake-vol-id");  // GenerateInvalidVolumeID
  EXPECT_TRUE(c().DeleteVolume(d).ok());
  auto vol = MustCreateVolume("sanity-controller-create-appropriate");
  d.set_volume_id(vol.volume().volume_id());
  EXPECT_TRUE(c().DeleteVolume(d).ok());

  v1::ValidateVolumeCapabilitiesRequest v;
  EXPECT_EQ(Code(c().ValidateVolumeCapabilities(v)), absl::StatusCode::kInvalidArgument);
  auto vv = MustCreateVolume("sanity-controller-validate");
  v.set_volume_id(vv.volume().volume_id());
  EXPECT_EQ(Code(c().ValidateVolumeCapabilities(v)), absl::StatusCode::kInvalidArgument);
  *v.add_volume_capabilities() = VCap();
  auto ok = c().ValidateVolumeCapabilities(v);
  ASSERT_TRUE(ok.ok()) << ok.status();
  if (ok->has_confirmed()) {
    EXPECT_FALSE(ok->confirmed().volume_capabilities().empty());
  }
  v.set_volume_id(kFakeVolumeId);
  EXPECT_EQ(Code(c().ValidateVolumeCapabilities(v)), absl::StatusCode::kNotFound);
  // ControllerPublishVolume specs are skipped by sanity: PUBLISH_UNPUBLISH_VOLUME is not offered.
}

// --- controller.go: ListSnapshots, DeleteSnapshot, CreateSnapshot --------------------------------

TEST_P(SanityRules, ListSnapshots_AllSpecs) {
  auto all0 = c().ListSnapshots({});
  ASSERT_TRUE(all0.ok());
  for (const auto& e : all0->entries()) VerifySnapshotInfo(e.snapshot());
  MustSnapshotFromNewVolume("listSnapshots-volume-unrelated-s-1", "listSnapshots-snapshot-unrelated-s-1");
  auto target = MustSnapshotFromNewVolume("listSnapshots-volume-target-s", "listSnapshots-snapshot-target-s");
  MustSnapshotFromNewVolume("listSnapshots-volume-unrelated-s-2", "listSnapshots-snapshot-unrelated-s-2");
  v1::ListSnapshotsRequest by_id;
  by_id.set_snapshot_id(target.snapshot_id());
  auto one = c().ListSnapshots(by_id);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->entries_size(), 1);
  VerifySnapshotInfo(one->entries(0).snapshot());
  EXPECT_EQ(one->entries(0).snapshot().snapshot_id(), target.snapshot_id());
  by_id.set_snapshot_id("none-exist-id");
  EXPECT_EQ(c().ListSnapshots(by_id)->entries_size(), 0);
  v1::ListSnapshotsRequest by_src;
  by_src.set_source_volume_id(target.source_volume_id());
  auto mine = c().ListSnapshots(by_src);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->entries_size(), 1);
  EXPECT_EQ(mine->entries(0).snapshot().source_volume_id(), target.source_volume_id());
  by_src.set_source_volume_id(kFakeVolumeId);
  EXPECT_EQ(c().ListSnapshots(by_src)->entries_size(), 0);

  // presence of new snapshots / absence of deleted ones
  int total = c().ListSnapshots({})->entries_size();
  auto s3 = MustSnapshotFromNewVolume("listSnapshots-volume-3", "listSnapshots-snapshot-3");
  EXPECT_EQ(c().ListSnapshots({})->entries_size(), total + 1);
  v1::DeleteSnapshotRequest ds;
  ds.set_snapshot_id(s3.snapshot_id());
  ASSERT_TRUE(c().DeleteSnapshot(ds).ok());
  EXPECT_EQ(c().ListSnapshots({})->entries_size(), total);

  // next token when a limited number of entries are requested (at least 5 snapshots)
  int have = c().ListSnapshots({})->entries_size();
  for (int i = have; i < 5; ++i)
    MustSnapshotFromNewVolume("volume" + std::to_string(i), "snapshot" + std::to_string(i));
  int current = c().ListSnapshots({})->entries_size();
  v1::ListSnapshotsRequest page;
  page.set_max_entries(2);
  auto p1 = c().ListSnapshots(page);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->entries_size(), 2);
  v1::ListSnapshotsRequest rest;
  rest.set_starting_token(p1->next_token());
  auto p2 = c().ListSnapshots(rest);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->entries_size(), current - 2);
}

TEST_P(SanityRules, DeleteSnapshot_And_CreateSnapshot_AllSpecs) {
  v1::DeleteSnapshotRequest ds;
  EXPECT_EQ(Code(c().DeleteSnapshot(ds)), absl::StatusCode::kInvalidArgument);
  ds.set_snapshot_id("reallyfakesnapshotid");
  EXPECT_TRUE(c().DeleteSnapshot(ds).ok());
  auto vol = MustCreateVolume("DeleteSnapshot-volume-1", kSanitySize, kSanitySize);
  ASSERT_TRUE(Snap("DeleteSnapshot-snapshot-1", vol.volume().volume_id()).ok());

  v1::CreateSnapshotRequest noname;
  noname.set_source_volume_id("testId");
  EXPECT_EQ(Code(c().CreateSnapshot(noname)), absl::StatusCode::kInvalidArgument);
  v1::CreateSnapshotRequest nosrc;
  nosrc.set_name("name");
  EXPECT_EQ(Code(c().CreateSnapshot(nosrc)), absl::StatusCode::kInvalidArgument);
  auto v1vol = MustCreateVolume("CreateSnapshot-volume-1", kSanitySize, kSanitySize);
  ASSERT_TRUE(Snap("CreateSnapshot-snapshot-1", v1vol.volume().volume_id()).ok());
  ASSERT_TRUE(Snap("CreateSnapshot-snapshot-1", v1vol.volume().volume_id()).ok());
  MustSnapshotFromNewVolume("CreateSnapshot-volume-2", "CreateSnapshot-snapshot-2");
  auto v3 = MustCreateVolume("CreateSnapshot-volume-3", kSanitySize, kSanitySize);
  EXPECT_EQ(Code(Snap("CreateSnapshot-snapshot-2", v3.volume().volume_id())), absl::StatusCode::kAlreadyExists);
  const std::string maxlen = std::string("CreateSnapshot-snapshot-maxlen-") + std::string(128 - 31, 'y');
  ASSERT_TRUE(Snap(maxlen, v1vol.volume().volume_id()).ok());
  ASSERT_TRUE(Snap(maxlen, v1vol.volume().volume_id()).ok());
  // A snapshot of a source that does not exist.
  EXPECT_EQ(Code(Snap("CreateSnapshot-missing-source", kFakeVolumeId)), absl::StatusCode::kNotFound);
}

// --- controller.go: GetSnapshot (v5.5; run only when GET_SNAPSHOT is advertised) -------------------

TEST_P(SanityRules, GetSnapshot_AllSpecs) {
  auto caps = c().ControllerGetCapabilities();
  ASSERT_TRUE(caps.ok());
  bool advertised = false;
  for (const auto& cap : caps->capabilities()) advertised |= cap.rpc().type() == Ctl::GET_SNAPSHOT;
  ASSERT_TRUE(advertised) << "GetSnapshot is served, so GET_SNAPSHOT must be advertised (else sanity skips it)";
  // should fail when no snapshot id is provided
  EXPECT_EQ(Code(c().GetSnapshot(v1::GetSnapshotRequest())), absl::StatusCode::kInvalidArgument);
  // should fail when the snapshot does not exist
  v1::GetSnapshotRequest missing;
  missing.set_snapshot_id("reallyfakesnapshotid");
  EXPECT_EQ(Code(c().GetSnapshot(missing)), absl::StatusCode::kNotFound);
  // should return appropriate values (no optional values added)
  auto snap = MustSnapshotFromNewVolume("GetSnapshot-volume-1", "GetSnapshot-snapshot-1");
  v1::GetSnapshotRequest get;
  get.set_snapshot_id(snap.snapshot_id());
  auto got = c().GetSnapshot(get);
  ASSERT_TRUE(got.ok()) << got.status();
  VerifySnapshotInfo(got->snapshot());
  EXPECT_EQ(got->snapshot().snapshot_id(), snap.snapshot_id());
  EXPECT_EQ(got->snapshot().source_volume_id(), snap.source_volume_id());
}

// --- controller.go: ExpandVolume ---------------------------------------------------------------

TEST_P(SanityRules, ExpandVolume_AllSpecs) {
  v1::ControllerExpandVolumeRequest req;
  req.mutable_capacity_range()->set_required_bytes(kSanityExpand);
  EXPECT_EQ(Code(c().ControllerExpandVolume(req)), absl::StatusCode::kInvalidArgument);
  req.clear_capacity_range();
  EXPECT_EQ(Code(c().ControllerExpandVolume(req)), absl::StatusCode::kInvalidArgument);
  auto vol = MustCreateVolume("sanity-expand-volume");
  req.set_volume_id(vol.volume().volume_id());
  req.mutable_capacity_range()->set_required_bytes(kSanityExpand);
  *req.mutable_volume_capability() = VCap();
  auto r = c().ControllerExpandVolume(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->capacity_bytes(), kSanityExpand);  // sanity wants the exact size back
}

// --- node.go -------------------------------------------------------------------------------------

TEST_P(SanityRules, Node_Capabilities_Info) {
  auto caps = c().NodeGetCapabilities();
  ASSERT_TRUE(caps.ok());
  using N = v1::NodeServiceCapability::RPC;
  std::set<int> known{N::UNKNOWN, N::STAGE_UNSTAGE_VOLUME, N::GET_VOLUME_STATS, N::EXPAND_VOLUME,
                      N::VOLUME_CONDITION, N::SINGLE_NODE_MULTI_WRITER, N::VOLUME_MOUNT_GROUP};
  for (const auto& cap : caps->capabilities()) EXPECT_TRUE(known.contains(cap.rpc().type()));
  auto info = c().NodeGetInfo();
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->node_id().empty());
  EXPECT_GE(info->max_volumes_per_node(), 0);
  EXPECT_TRUE(info->has_accessible_topology());  // we advertise VOLUME_ACCESSIBILITY_CONSTRAINTS
}

TEST_P(SanityRules, NodePublish_NodeUnpublish_NodeStage_NodeUnstage_MissingFields) {
  v1::NodePublishVolumeRequest p;
  EXPECT_EQ(Code(c().NodePublishVolume(p)), absl::StatusCode::kInvalidArgument);
  p.set_volume_id(kFakeVolumeId);
  EXPECT_EQ(Code(c().NodePublishVolume(p)), absl::StatusCode::kInvalidArgument);
  p.set_target_path(target());
  EXPECT_EQ(Code(c().NodePublishVolume(p)), absl::StatusCode::kInvalidArgument);
  v1::NodeUnpublishVolumeRequest u;
  EXPECT_EQ(Code(c().NodeUnpublishVolume(u)), absl::StatusCode::kInvalidArgument);
  u.set_volume_id(kFakeVolumeId);
  EXPECT_EQ(Code(c().NodeUnpublishVolume(u)), absl::StatusCode::kInvalidArgument);

  v1::NodeStageVolumeRequest s;
  s.set_staging_target_path(staging_);
  *s.mutable_volume_capability() = VCap();
  (*s.mutable_publish_context())["device"] = "/dev/mock";
  EXPECT_EQ(Code(c().NodeStageVolume(s)), absl::StatusCode::kInvalidArgument);
  s.set_volume_id(kFakeVolumeId);
  s.clear_staging_target_path();
  EXPECT_EQ(Code(c().NodeStageVolume(s)), absl::StatusCode::kInvalidArgument);
  // "should fail when no volume capability is provided" uses a real (mount) volume.
  auto real = Create(CreateReq("sanity-node-stage-nocaps", 0, false));
  ASSERT_TRUE(real.ok());
  v1::NodeStageVolumeRequest nocap;
  nocap.set_volume_id(real->volume().volume_id());
  nocap.set_staging_target_path(staging_);
  (*nocap.mutable_publish_context())["device"] = "/dev/mock";
  EXPECT_EQ(Code(c().NodeStageVolume(nocap)), absl::StatusCode::kInvalidArgument);

  v1::NodeUnstageVolumeRequest us;
  us.set_staging_target_path(staging_);
  EXPECT_EQ(Code(c().NodeUnstageVolume(us)), absl::StatusCode::kInvalidArgument);
  us.set_volume_id(kFakeVolumeId);
  us.clear_staging_target_path();
  EXPECT_EQ(Code(c().NodeUnstageVolume(us)), absl::StatusCode::kInvalidArgument);
}

TEST_P(SanityRules, NodeUnpublish_RemovesTargetPath) {
  auto vol = MustCreateVolume("sanity-node-unpublish-volume");
  const std::string id = vol.volume().volume_id();
  ASSERT_TRUE(Stage(id, staging_, block()).ok());
  ASSERT_TRUE(Publish(id, staging_, target(), block()).ok());
  EXPECT_TRUE(Exists(target())) << "the driver creates the target path";
  ASSERT_TRUE(Unpublish(id, target()).ok());
  EXPECT_FALSE(Exists(target())) << "and removes it on NodeUnpublishVolume";
}

TEST_P(SanityRules, NodeGetVolumeStats_AllSpecs) {
  v1::NodeGetVolumeStatsRequest s;
  s.set_volume_path("some/path");
  EXPECT_EQ(Code(c().NodeGetVolumeStats(s)), absl::StatusCode::kInvalidArgument);
  s.set_volume_id(kFakeVolumeId);
  s.clear_volume_path();
  EXPECT_EQ(Code(c().NodeGetVolumeStats(s)), absl::StatusCode::kInvalidArgument);
  s.set_volume_path("some/path");
  EXPECT_EQ(Code(c().NodeGetVolumeStats(s)), absl::StatusCode::kNotFound);
  auto vol = MustCreateVolume("sanity-node-get-volume-stats");
  ASSERT_TRUE(Stage(vol.volume().volume_id(), staging_, block()).ok());
  ASSERT_TRUE(Publish(vol.volume().volume_id(), staging_, target(), block()).ok());
  s.set_volume_id(vol.volume().volume_id());
  EXPECT_EQ(Code(c().NodeGetVolumeStats(s)), absl::StatusCode::kNotFound);  // not there
}

TEST_P(SanityRules, NodeExpandVolume_AllSpecs) {
  v1::NodeExpandVolumeRequest e;
  e.set_volume_path(target_dir_);
  *e.mutable_volume_capability() = VCap();
  EXPECT_EQ(Code(c().NodeExpandVolume(e)), absl::StatusCode::kInvalidArgument);
  auto v = MustCreateVolume("sanity-node-expand-volume-valid-id");
  e.set_volume_id(v.volume().volume_id());
  e.clear_volume_path();
  EXPECT_EQ(Code(c().NodeExpandVolume(e)), absl::StatusCode::kInvalidArgument);
  v1::NodeExpandVolumeRequest nf;
  nf.set_volume_id(kFakeVolumeId);
  nf.set_volume_path("some/path");
  EXPECT_EQ(Code(c().NodeExpandVolume(nf)), absl::StatusCode::kNotFound);

  // should work if node-expand is called after node-publish
  auto vol = MustCreateVolume("sanity-node-expand-volume");
  v1::ControllerExpandVolumeRequest ce;
  ce.set_volume_id(vol.volume().volume_id());
  ce.mutable_capacity_range()->set_required_bytes(kSanityExpand);
  auto cr = c().ControllerExpandVolume(ce);
  ASSERT_TRUE(cr.ok()) << cr.status();
  EXPECT_EQ(cr->capacity_bytes(), kSanityExpand);
  ASSERT_TRUE(Stage(vol.volume().volume_id(), staging_, block()).ok());
  ASSERT_TRUE(Publish(vol.volume().volume_id(), staging_, target(), block()).ok());
  v1::NodeExpandVolumeRequest ne;
  ne.set_volume_id(vol.volume().volume_id());
  ne.set_volume_path(target());
  ne.mutable_capacity_range()->set_required_bytes(kSanityExpand);
  auto nr = c().NodeExpandVolume(ne);
  EXPECT_TRUE(nr.ok()) << nr.status();
}

TEST_P(SanityRules, Node_ShouldWork_And_ShouldBeIdempotent) {
  for (int count : {1, 10}) {  // sanity's default IdempotentCount is 10
    auto info = c().NodeGetInfo();
    ASSERT_TRUE(info.ok());
    auto req = CreateReq("sanity-node-full-" + std::to_string(count), kSanitySize, block());
    *req.mutable_accessibility_requirements()->add_requisite() = info->accessible_topology();
    auto vol = Create(req);
    ASSERT_TRUE(vol.ok()) << vol.status();
    const std::string id = vol->volume().volume_id();
    for (int i = 0; i < count; ++i) ASSERT_TRUE(Stage(id, staging_, block()).ok());
    for (int i = 0; i < count; ++i) ASSERT_TRUE(Publish(id, staging_, target(), block()).ok());
    v1::NodeGetVolumeStatsRequest s;
    s.set_volume_id(id);
    s.set_volume_path(target());
    auto stats = c().NodeGetVolumeStats(s);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_FALSE(stats->usage().empty());
    // Cleanup happens in TearDown (unpublish, unstage, delete) as sanity's would; do it now for
    // this volume so the next round can use the same target and staging paths.
    ASSERT_TRUE(Unpublish(id, target()).ok());
    ASSERT_TRUE(Unstage(id, staging_).ok());
  }
}

// --- groupcontroller.go: "GroupController Service [GroupController Server]" and
// "[GroupController VolumeGroupSnapshots]" (run when GROUP_CONTROLLER_SERVICE is listed) ----------

TEST_P(SanityRules, GroupController_AllSpecs) {
  auto plugin = c().GetPluginCapabilities();
  ASSERT_TRUE(plugin.ok());
  bool provides = false;
  for (const auto& cap : plugin->capabilities())
    provides = provides || (cap.has_service() &&
                            cap.service().type() == v1::PluginCapability::Service::GROUP_CONTROLLER_SERVICE);
  ASSERT_TRUE(provides);
  auto caps = c().GroupControllerGetCapabilities();
  ASSERT_TRUE(caps.ok());
  bool create_delete_get = false;
  for (const auto& cap : caps->capabilities()) {
    ASSERT_TRUE(cap.has_rpc());
    EXPECT_EQ(cap.rpc().type(), v1::GroupControllerServiceCapability::RPC::CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT)
        << "Unknown capability";
    create_delete_get = true;
  }
  ASSERT_TRUE(create_delete_get);
  // CreateVolumeGroupSnapshot: should fail when no name is provided.
  EXPECT_EQ(Code(c().CreateVolumeGroupSnapshot(v1::CreateVolumeGroupSnapshotRequest())),
            absl::StatusCode::kInvalidArgument);
  // GetVolumeGroupSnapshot: no id; an invalid id.
  v1::GetVolumeGroupSnapshotRequest get;
  EXPECT_EQ(Code(c().GetVolumeGroupSnapshot(get)), absl::StatusCode::kInvalidArgument);
  get.set_group_snapshot_id(kFakeVolumeId);
  EXPECT_EQ(Code(c().GetVolumeGroupSnapshot(get)), absl::StatusCode::kNotFound);
  // DeleteVolumeGroupSnapshot: no id; an invalid id succeeds.
  v1::DeleteVolumeGroupSnapshotRequest del;
  EXPECT_EQ(Code(c().DeleteVolumeGroupSnapshot(del)), absl::StatusCode::kInvalidArgument);
  del.set_group_snapshot_id(kFakeVolumeId);
  EXPECT_TRUE(c().DeleteVolumeGroupSnapshot(del).ok());
}

// --- controller.go: "ModifyVolume [Controller Server]" (run when MODIFY_VOLUME is listed) -------

TEST_P(SanityRules, ModifyVolume_AllSpecs) {
  auto caps = c().ControllerGetCapabilities();
  ASSERT_TRUE(caps.ok());
  bool modify = false;
  for (const auto& cap : caps->capabilities()) modify = modify || cap.rpc().type() == Ctl::MODIFY_VOLUME;
  ASSERT_TRUE(modify);
  // sc.Config.TestVolumeMutableParameters, as a deployment would pass with -csi.testvolumemutableparameters.
  const std::map<std::string, std::string> test_params = {{"iopsLimit", "1000"}};
  auto modify_req = [&](const std::string& id, const std::map<std::string, std::string>& params) {
    v1::ControllerModifyVolumeRequest r;
    r.set_volume_id(id);
    for (const auto& [k, v] : params) (*r.mutable_mutable_parameters())[k] = v;
    return r;
  };
  // should fail if no volume id is given / if volume does not exist
  EXPECT_EQ(Code(c().ControllerModifyVolume(modify_req("", test_params))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(c().ControllerModifyVolume(modify_req("non-existing-volume-id", test_params))),
            absl::StatusCode::kNotFound);
  // should fail if specified mutable parameters are not supported by the volume
  auto plain = MustCreateVolume("sanity-modify-volume-1", kSanitySize, kSanitySize);
  EXPECT_EQ(Code(c().ControllerModifyVolume(modify_req(plain.volume().volume_id(), {{"XXX_FakeKey", "XXX_FakeValue"}}))),
            absl::StatusCode::kInvalidArgument);
  // should modify a volume created without a volume attribute class (with and without parameters)
  EXPECT_TRUE(c().ControllerModifyVolume(modify_req(plain.volume().volume_id(), test_params)).ok());
  EXPECT_TRUE(c().ControllerModifyVolume(modify_req(plain.volume().volume_id(), {})).ok());
  // should modify a volume created with a volume attribute class
  auto req = CreateReq("sanity-modify-volume-2", kSanitySize, block());
  req.mutable_capacity_range()->set_limit_bytes(kSanitySize);
  for (const auto& [k, v] : test_params) (*req.mutable_mutable_parameters())[k] = v;
  auto with_vac = Create(req);
  ASSERT_TRUE(with_vac.ok()) << with_vac.status();
  EXPECT_TRUE(c().ControllerModifyVolume(modify_req(with_vac->volume().volume_id(), test_params)).ok());
  // should fail to modify it with mutable parameters the volume does not support
  EXPECT_EQ(Code(c().ControllerModifyVolume(
                modify_req(with_vac->volume().volume_id(), {{"XXX_FakeKey", "XXX_FakeValue"}}))),
            absl::StatusCode::kInvalidArgument);
}

// node.go (csi-test v5.5, kubernetes-csi/csi-test#602): with SINGLE_NODE_MULTI_WRITER advertised,
// "should fail when volume with single node single writer access mode is already mounted at a
// different target path".
TEST_P(SanityRules, NodePublish_SingleNodeSingleWriter_SecondTargetFailedPrecondition) {
  auto req = CreateReq("sanity-node-single-writer", kSanitySize, block(), {Mode::SINGLE_NODE_SINGLE_WRITER});
  auto vol = Create(req);
  ASSERT_TRUE(vol.ok()) << vol.status();
  const std::string id = vol->volume().volume_id();
  ASSERT_TRUE(Stage(id, staging_, block(), Mode::SINGLE_NODE_SINGLE_WRITER).ok());
  ASSERT_TRUE(Publish(id, staging_, target(), block(), false, Mode::SINGLE_NODE_SINGLE_WRITER).ok());
  const std::string other = target_dir_ + "/other_target";
  EXPECT_EQ(Publish(id, staging_, other, block(), false, Mode::SINGLE_NODE_SINGLE_WRITER).code(),
            absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(AccessType, SanityRules, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Block" : "Mount"; });

}  // namespace
}  // namespace vdisk::csi::testing
