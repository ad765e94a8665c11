// The Controller and Identity services over the socket, called the way the external-provisioner,
// external-snapshotter and external-resizer call them: every RPC, idempotent repeats, and the
// exact error code for each kind of bad input.
#include <algorithm>
#include <set>

#include "tests/csi/csi_fixture.h"

namespace vdisk::csi::testing {
namespace {

using Ctl = v1::ControllerServiceCapability::RPC;

class ControllerTest : public CsiDriverTest {};

TEST_F(ControllerTest, IdentityAnswersLikeADriverShould) {
  auto info = c().GetPluginInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name(), "vdisk.csi.io");
  EXPECT_FALSE(info->vendor_version().empty());
  auto caps = c().GetPluginCapabilities();
  ASSERT_TRUE(caps.ok());
  std::set<int> services;
  bool online = false;
  for (const auto& cap : caps->capabilities()) {
    if (cap.has_service()) services.insert(cap.service().type());
    if (cap.has_volume_expansion()) online = cap.volume_expansion().type() == v1::PluginCapability::VolumeExpansion::ONLINE;
  }
  EXPECT_TRUE(services.contains(v1::PluginCapability::Service::CONTROLLER_SERVICE));
  EXPECT_TRUE(services.contains(v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS));
  EXPECT_TRUE(services.contains(v1::PluginCapability::Service::GROUP_CONTROLLER_SERVICE));
  EXPECT_FALSE(services.contains(v1::PluginCapability::Service::SNAPSHOT_METADATA_SERVICE))
      << "only with --snapshot-metadata";
  EXPECT_TRUE(online);
  auto probe = c().Probe();
  ASSERT_TRUE(probe.ok());
  EXPECT_TRUE(probe->ready().value());
}

TEST_F(ControllerTest, CapabilitiesAreExactlyWhatIsServed) {
  auto caps = c().ControllerGetCapabilities();
  ASSERT_TRUE(caps.ok());
  std::set<int> got;
  for (const auto& cap : caps->capabilities()) got.insert(cap.rpc().type());
  std::set<int> want{Ctl::CREATE_DELETE_VOLUME, Ctl::LIST_VOLUMES,  Ctl::GET_CAPACITY, Ctl::CREATE_DELETE_SNAPSHOT,
                     Ctl::LIST_SNAPSHOTS,       Ctl::CLONE_VOLUME,  Ctl::EXPAND_VOLUME, Ctl::GET_VOLUME,
                     Ctl::VOLUME_CONDITION,     Ctl::SINGLE_NODE_MULTI_WRITER, Ctl::GET_SNAPSHOT,
                     Ctl::MODIFY_VOLUME};
  EXPECT_EQ(got, want);
  v1::ControllerPublishVolumeRequest pub;
  pub.set_volume_id("x");
  EXPECT_EQ(Code(c().ControllerPublishVolume(pub)), absl::StatusCode::kUnimplemented);
}

TEST_F(ControllerTest, CreateVolumeBlockAndFilesystemWithRoundingAndTopology) {
  auto blk = MustCreate(CreateReq("pvc-block", 10 * kMiB + 1, true,
                                  {Mode::SINGLE_NODE_WRITER, Mode::MULTI_NODE_MULTI_WRITER}));
  EXPECT_EQ(blk.capacity_bytes(), 11 * kMiB);  // rounded up to the pool's 1 MiB granularity
  EXPECT_EQ(blk.volume_context().at("vdisk.csi.io/mode"), "block");
  EXPECT_EQ(blk.volume_context().at("vdisk.csi.io/pool"), "local");
  ASSERT_EQ(blk.accessible_topology_size(), 1);
  EXPECT_EQ(blk.accessible_topology(0).segments().at("topology.vdisk.csi.io/node"), "test-node");
  EXPECT_TRUE(blk.volume_id().starts_with("v1.vol.local."));

  auto fsv = MustCreate(CreateReq("pvc-fs", 0, false, {Mode::MULTI_NODE_MULTI_WRITER}));
  EXPECT_EQ(fsv.capacity_bytes(), kGiB);  // no capacity asked: the default size
  EXPECT_EQ(fsv.volume_context().at("vdisk.csi.io/mode"), "filesystem");

  auto limited = CreateReq("pvc-limited", 0, true);
  limited.mutable_capacity_range()->set_limit_bytes(64 * kMiB + 7);
  EXPECT_EQ(MustCreate(limited).capacity_bytes(), 64 * kMiB);
}

TEST_F(ControllerTest, CreateVolumeIsIdempotentByNameAndRefusesIncompatibleRepeats) {
  auto req = CreateReq("pvc-idem", 16 * kMiB, true);
  auto first = MustCreate(req);
  auto again = MustCreate(req);
  EXPECT_EQ(first.volume_id(), again.volume_id());
  EXPECT_EQ(again.capacity_bytes(), 16 * kMiB);

  auto bigger = CreateReq("pvc-idem", 32 * kMiB, true);
  bigger.mutable_capacity_range()->set_limit_bytes(32 * kMiB);
  EXPECT_EQ(Code(c().CreateVolume(bigger)), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-idem", 16 * kMiB, false))), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-idem", 16 * kMiB, true, {Mode::MULTI_NODE_MULTI_WRITER}))),
            absl::StatusCode::kAlreadyExists);
  auto other_param = req;
  (*other_param.mutable_parameters())["preallocation"] = "full";
  EXPECT_EQ(Code(c().CreateVolume(other_param)), absl::StatusCode::kAlreadyExists);
  // Sidecar metadata parameters are not the volume's identity.
  auto with_meta = req;
  (*with_meta.mutable_parameters())["csi.storage.k8s.io/pvc/name"] = "data";
  EXPECT_EQ(MustCreate(with_meta).volume_id(), first.volume_id());

  auto list = c().ListVolumes({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->entries_size(), 1);  // still exactly one volume
}

TEST_F(ControllerTest, CreateVolumeBadInputCodes) {
  // Missing name / capabilities.
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("", kMiB, true))), absl::StatusCode::kInvalidArgument);
  auto nocaps = CreateReq("pvc-nocaps", kMiB, true);
  nocaps.clear_volume_capabilities();
  EXPECT_EQ(Code(c().CreateVolume(nocaps)), absl::StatusCode::kInvalidArgument);
  // Capability without access type, with UNKNOWN or an unheard-of access mode, or mixing types.
  auto notype = CreateReq("pvc-notype", kMiB, true);
  notype.mutable_volume_capabilities(0)->clear_block();
  EXPECT_EQ(Code(c().CreateVolume(notype)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-unknown", kMiB, true, {Mode::UNKNOWN}))),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-weird", kMiB, true, {static_cast<Mode::Mode>(99)}))),
            absl::StatusCode::kInvalidArgument);
  auto mixed = CreateReq("pvc-mixed", kMiB, true);
  *mixed.add_volume_capabilities() = Cap(false);
  EXPECT_EQ(Code(c().CreateVolume(mixed)), absl::StatusCode::kInvalidArgument);
  // Names: 128 bytes is fine, 129 is not, control characters are banned.
  EXPECT_TRUE(c().CreateVolume(CreateReq(std::string(128, 'n'), kMiB, true)).ok());
  EXPECT_EQ(Code(c().CreateVolume(CreateReq(std::string(129, 'n'), kMiB, true))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("bad\x01name", kMiB, true))), absl::StatusCode::kInvalidArgument);
  // Capacity ranges.
  auto inverted = CreateReq("pvc-inv", 2 * kMiB, true);
  inverted.mutable_capacity_range()->set_limit_bytes(kMiB);
  EXPECT_EQ(Code(c().CreateVolume(inverted)), absl::StatusCode::kInvalidArgument);
  auto negative = CreateReq("pvc-neg", 0, true);
  negative.mutable_capacity_range()->set_required_bytes(-5);
  EXPECT_EQ(Code(c().CreateVolume(negative)), absl::StatusCode::kInvalidArgument);
  auto unaligned = CreateReq("pvc-unal", kMiB + 1, true);
  unaligned.mutable_capacity_range()->set_limit_bytes(2 * kMiB - 1);
  EXPECT_EQ(Code(c().CreateVolume(unaligned)), absl::StatusCode::kOutOfRange);
  // Parameters: unknown pool, unknown pool parameter.
  auto nopool = CreateReq("pvc-nopool", kMiB, true);
  (*nopool.mutable_parameters())["pool"] = "nonexistent";
  EXPECT_EQ(Code(c().CreateVolume(nopool)), absl::StatusCode::kInvalidArgument);
  auto badparam = CreateReq("pvc-badparam", kMiB, true);
  (*badparam.mutable_parameters())["colour"] = "blue";
  EXPECT_EQ(Code(c().CreateVolume(badparam)), absl::StatusCode::kInvalidArgument);
  // Content sources that do not exist (including ids made up by hand).
  auto from_snap = CreateReq("pvc-from-missing-snap", kMiB, true);
  from_snap.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("non-existing-snapshot-id");
  EXPECT_EQ(Code(c().CreateVolume(from_snap)), absl::StatusCode::kNotFound);
  from_snap.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("v1.snap.local.nope-000000000000");
  EXPECT_EQ(Code(c().CreateVolume(from_snap)), absl::StatusCode::kNotFound);
  auto from_vol = CreateReq("pvc-from-missing-vol", kMiB, true);
  from_vol.mutable_volume_content_source()->mutable_volume()->set_volume_id("fake-vol-id-1234");
  EXPECT_EQ(Code(c().CreateVolume(from_vol)), absl::StatusCode::kNotFound);
  // A node-local pool cannot provision where the topology requirement points elsewhere.
  auto elsewhere = CreateReq("pvc-elsewhere", kMiB, true);
  (*elsewhere.mutable_accessibility_requirements()->add_requisite()->mutable_segments())
      ["topology.vdisk.csi.io/node"] = "other-node";
  EXPECT_EQ(Code(c().CreateVolume(elsewhere)), absl::StatusCode::kResourceExhausted);
  (*elsewhere.mutable_accessibility_requirements()->add_requisite()->mutable_segments())
      ["topology.vdisk.csi.io/node"] = "test-node";
  EXPECT_TRUE(c().CreateVolume(elsewhere).ok());
  // None of the refused requests left a volume behind.
  auto list = c().ListVolumes({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->entries_size(), 2);
}

TEST_F(ControllerTest, DeleteVolumeIsIdempotentAndToleratesForeignIds) {
  v1::DeleteVolumeRequest del;
  EXPECT_EQ(Code(c().DeleteVolume(del)), absl::StatusCode::kInvalidArgument);
  del.set_volume_id("fake-vol-id");
  EXPECT_TRUE(c().DeleteVolume(del).ok());
  del.set_volume_id("v1.vol.otherpool.x");
  EXPECT_TRUE(c().DeleteVolume(del).ok());
  auto vol = MustCreate(CreateReq("pvc-del", kMiB, true));
  del.set_volume_id(vol.volume_id());
  EXPECT_TRUE(c().DeleteVolume(del).ok());
  EXPECT_TRUE(c().DeleteVolume(del).ok());
  v1::ControllerGetVolumeRequest get;
  get.set_volume_id(vol.volume_id());
  EXPECT_EQ(Code(c().ControllerGetVolume(get)), absl::StatusCode::kNotFound);
}

TEST_F(ControllerTest, ValidateVolumeCapabilities) {
  auto vol = MustCreate(CreateReq("pvc-validate", kMiB, true));
  v1::ValidateVolumeCapabilitiesRequest req;
  *req.add_volume_capabilities() = Cap(true);
  EXPECT_EQ(Code(c().ValidateVolumeCapabilities(req)), absl::StatusCode::kInvalidArgument);  // no id
  req.set_volume_id(vol.volume_id());
  auto ok = c().ValidateVolumeCapabilities(req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_TRUE(ok->has_confirmed());
  EXPECT_EQ(ok->confirmed().volume_capabilities_size(), 1);
  req.clear_volume_capabilities();
  EXPECT_EQ(Code(c().ValidateVolumeCapabilities(req)), absl::StatusCode::kInvalidArgument);  // no caps
  *req.add_volume_capabilities() = Cap(false);  // mount access to a block volume
  auto no = c().ValidateVolumeCapabilities(req);
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(no->has_confirmed());
  EXPECT_FALSE(no->message().empty());
  req.set_volume_id("fake-vol-id-77");
  EXPECT_EQ(Code(c().ValidateVolumeCapabilities(req)), absl::StatusCode::kNotFound);
  req.set_volume_id("v1.vol.local.not-there");
  EXPECT_EQ(Code(c().ValidateVolumeCapabilities(req)), absl::StatusCode::kNotFound);
}

TEST_F(ControllerTest, ListVolumesPagesAndRejectsBadTokens) {
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.insert(MustCreate(CreateReq("pvc-list-" + std::to_string(i), kMiB, i % 2)).volume_id());
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListVolumesRequest req;
    req.set_max_entries(2);
    req.set_starting_token(token);
    auto page = c().ListVolumes(req);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->entries_size(), 2);
    for (const auto& e : page->entries()) {
      EXPECT_TRUE(seen.insert(e.volume().volume_id()).second) << "duplicate " << e.volume().volume_id();
      EXPECT_TRUE(e.status().has_volume_condition());
    }
    token = page->next_token();
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, ids);

  v1::ListVolumesRequest bad;
  bad.set_starting_token("invalid-token");
  EXPECT_EQ(Code(c().ListVolumes(bad)), absl::StatusCode::kAborted);

  // A token stays valid when the last volume of its page is deleted.
  v1::ListVolumesRequest first;
  first.set_max_entries(2);
  auto p1 = c().ListVolumes(first);
  ASSERT_TRUE(p1.ok());
  v1::DeleteVolumeRequest del;
  del.set_volume_id(p1->entries(1).volume().volume_id());
  ASSERT_TRUE(c().DeleteVolume(del).ok());
  v1::ListVolumesRequest rest;
  rest.set_starting_token(p1->next_token());
  auto p2 = c().ListVolumes(rest);
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(p2->entries_size(), 3);
}

TEST_F(ControllerTest, GetCapacityAndControllerGetVolume) {
  auto cap = c().GetCapacity({});
  ASSERT_TRUE(cap.ok()) << cap.status();
  EXPECT_GT(cap->available_capacity(), 0);
  v1::GetCapacityRequest elsewhere;
  (*elsewhere.mutable_accessible_topology()->mutable_segments())["topology.vdisk.csi.io/node"] = "other-node";
  auto zero = c().GetCapacity(elsewhere);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->available_capacity(), 0);
  v1::GetCapacityRequest badpool;
  (*badpool.mutable_parameters())["pool"] = "missing";
  EXPECT_EQ(Code(c().GetCapacity(badpool)), absl::StatusCode::kInvalidArgument);

  auto vol = MustCreate(CreateReq("pvc-get", 3 * kMiB, false));
  v1::ControllerGetVolumeRequest get;
  get.set_volume_id(vol.volume_id());
  auto got = c().ControllerGetVolume(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->volume().capacity_bytes(), 3 * kMiB);
  EXPECT_FALSE(got->status().volume_condition().abnormal());
  get.set_volume_id("");
  EXPECT_EQ(Code(c().ControllerGetVolume(get)), absl::StatusCode::kInvalidArgument);
  get.set_volume_id("made-up-by-hand");
  EXPECT_EQ(Code(c().ControllerGetVolume(get)), absl::StatusCode::kNotFound);
}

TEST_F(ControllerTest, ControllerExpandVolume) {
  auto vol = MustCreate(CreateReq("pvc-expand", 8 * kMiB, true));
  v1::ControllerExpandVolumeRequest req;
  req.mutable_capacity_range()->set_required_bytes(16 * kMiB);
  EXPECT_EQ(Code(c().ControllerExpandVolume(req)), absl::StatusCode::kInvalidArgument);  // no id
  req.set_volume_id(vol.volume_id());
  auto norange = req;
  norange.clear_capacity_range();
  EXPECT_EQ(Code(c().ControllerExpandVolume(norange)), absl::StatusCode::kInvalidArgument);
  auto r = c().ControllerExpandVolume(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->capacity_bytes(), 16 * kMiB);
  EXPECT_TRUE(r->node_expansion_required());  // a loop device must be refreshed on the node
  auto again = c().ControllerExpandVolume(req);  // idempotent
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->capacity_bytes(), 16 * kMiB);
  auto smaller = req;
  smaller.mutable_capacity_range()->set_required_bytes(4 * kMiB);
  auto s = c().ControllerExpandVolume(smaller);  // never shrinks: already big enough
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->capacity_bytes(), 16 * kMiB);
  smaller.mutable_capacity_range()->set_limit_bytes(4 * kMiB);
  EXPECT_EQ(Code(c().ControllerExpandVolume(smaller)), absl::StatusCode::kOutOfRange);
  auto wrong_type = req;
  *wrong_type.mutable_volume_capability() = Cap(false);
  EXPECT_EQ(Code(c().ControllerExpandVolume(wrong_type)), absl::StatusCode::kInvalidArgument);
  req.set_volume_id("fake-vol-id");
  EXPECT_EQ(Code(c().ControllerExpandVolume(req)), absl::StatusCode::kNotFound);
}

TEST_F(ControllerTest, SnapshotsLikeTheExternalSnapshotter) {
  auto vol = MustCreate(CreateReq("pvc-snapsrc", 6 * kMiB, true));
  v1::CreateSnapshotRequest req;
  req.set_source_volume_id(vol.volume_id());
  EXPECT_EQ(Code(c().CreateSnapshot(req)), absl::StatusCode::kInvalidArgument);  // no name
  req.set_name("snapshot-1");
  req.clear_source_volume_id();
  EXPECT_EQ(Code(c().CreateSnapshot(req)), absl::StatusCode::kInvalidArgument);  // no source
  req.set_source_volume_id("testId");
  EXPECT_EQ(Code(c().CreateSnapshot(req)), absl::StatusCode::kNotFound);
  req.set_source_volume_id(vol.volume_id());
  (*req.mutable_parameters())["csi.storage.k8s.io/volumesnapshot/name"] = "snap";  // sidecar metadata is fine
  auto s1 = c().CreateSnapshot(req);
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(s1->snapshot().size_bytes(), 6 * kMiB);
  EXPECT_TRUE(s1->snapshot().ready_to_use());
  EXPECT_GT(s1->snapshot().creation_time().seconds(), 0);
  EXPECT_EQ(s1->snapshot().source_volume_id(), vol.volume_id());
  auto s1again = c().CreateSnapshot(req);
  ASSERT_TRUE(s1again.ok());
  EXPECT_EQ(s1again->snapshot().snapshot_id(), s1->snapshot().snapshot_id());
  auto other = MustCreate(CreateReq("pvc-snapsrc2", kMiB, true));
  auto conflict = req;
  conflict.set_source_volume_id(other.volume_id());
  EXPECT_EQ(Code(c().CreateSnapshot(conflict)), absl::StatusCode::kAlreadyExists);
  auto badparam = req;
  badparam.set_name("snapshot-badparam");
  (*badparam.mutable_parameters())["speed"] = "fast";
  EXPECT_EQ(Code(c().CreateSnapshot(badparam)), absl::StatusCode::kInvalidArgument);
  auto s2 = MustSnapshot("snapshot-2", other.volume_id());
  auto s3 = MustSnapshot(std::string(128, 's'), vol.volume_id());  // maximum-length name

  // Listing: all, by id, by source, unknown id / source -> empty, paging.
  auto all = c().ListSnapshots({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->entries_size(), 3);
  v1::ListSnapshotsRequest by_id;
  by_id.set_snapshot_id(s2.snapshot_id());
  auto one = c().ListSnapshots(by_id);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->entries_size(), 1);
  EXPECT_EQ(one->entries(0).snapshot().source_volume_id(), other.volume_id());
  for (const char* missing : {"none-exist-id", "v1.snap.local.gone", "v1.snap.nopool.x"}) {
    by_id.set_snapshot_id(missing);
    auto none = c().ListSnapshots(by_id);
    ASSERT_TRUE(none.ok()) << missing;
    EXPECT_EQ(none->entries_size(), 0) << missing;
  }
  v1::ListSnapshotsRequest by_src;
  by_src.set_source_volume_id(vol.volume_id());
  auto two = c().ListSnapshots(by_src);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->entries_size(), 2);
  by_src.set_source_volume_id("fake-vol-id-x");
  EXPECT_EQ(c().ListSnapshots(by_src)->entries_size(), 0);
  v1::ListSnapshotsRequest paged;
  paged.set_max_entries(2);
  auto p1 = c().ListSnapshots(paged);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->entries_size(), 2);
  ASSERT_FALSE(p1->next_token().empty());
  v1::ListSnapshotsRequest rest;
  rest.set_starting_token(p1->next_token());
  auto p2 = c().ListSnapshots(rest);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->entries_size(), 1);
  EXPECT_TRUE(p2->next_token().empty());
  rest.set_starting_token("garbage");
  EXPECT_EQ(Code(c().ListSnapshots(rest)), absl::StatusCode::kAborted);

  v1::GetSnapshotRequest get;
  get.set_snapshot_id(s3.snapshot_id());
  auto got = c().GetSnapshot(get);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->snapshot().source_volume_id(), vol.volume_id());
  get.set_snapshot_id("reallyfakesnapshotid");
  EXPECT_EQ(Code(c().GetSnapshot(get)), absl::StatusCode::kNotFound);

  // Deleting: no id is refused, unknown ids succeed, repeats succeed.
  v1::DeleteSnapshotRequest del;
  EXPECT_EQ(Code(c().DeleteSnapshot(del)), absl::StatusCode::kInvalidArgument);
  del.set_snapshot_id("reallyfakesnapshotid");
  EXPECT_TRUE(c().DeleteSnapshot(del).ok());
  del.set_snapshot_id(s1->snapshot().snapshot_id());
  EXPECT_TRUE(c().DeleteSnapshot(del).ok());
  EXPECT_TRUE(c().DeleteSnapshot(del).ok());
  EXPECT_EQ(c().ListSnapshots({})->entries_size(), 2);

  // A snapshot outlives its source volume (local pool snapshots are independent copies).
  v1::DeleteVolumeRequest dv;
  dv.set_volume_id(vol.volume_id());
  ASSERT_TRUE(c().DeleteVolume(dv).ok());
  get.set_snapshot_id(s3.snapshot_id());
  EXPECT_TRUE(c().GetSnapshot(get).ok());
  // An idempotent repeat of CreateSnapshot still answers after the source is gone.
  v1::CreateSnapshotRequest repeat;
  repeat.set_name(std::string(128, 's'));
  repeat.set_source_volume_id(vol.volume_id());
  auto r = c().CreateSnapshot(repeat);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->snapshot().snapshot_id(), s3.snapshot_id());
}

TEST_F(ControllerTest, CreateVolumeFromSnapshotAndFromVolumeEchoesTheSource) {
  auto vol = MustCreate(CreateReq("pvc-origin", 4 * kMiB, true));
  auto snap = MustSnapshot("snap-origin", vol.volume_id());

  auto restore = CreateReq("pvc-restored", 8 * kMiB, true);  // larger than the source
  restore.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  auto r = MustCreate(restore);
  EXPECT_EQ(r.capacity_bytes(), 8 * kMiB);
  ASSERT_TRUE(r.content_source().has_snapshot());  // the external-provisioner insists on it
  EXPECT_EQ(r.content_source().snapshot().snapshot_id(), snap.snapshot_id());
  auto r2 = MustCreate(restore);  // idempotent, source still echoed
  EXPECT_EQ(r2.volume_id(), r.volume_id());
  EXPECT_TRUE(r2.content_source().has_snapshot());

  auto same_size = CreateReq("pvc-restored-nosize", 0, true);
  same_size.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  EXPECT_EQ(MustCreate(same_size).capacity_bytes(), 4 * kMiB);  // no size asked: the source's

  auto too_small = CreateReq("pvc-too-small", 2 * kMiB, true);
  too_small.mutable_capacity_range()->set_limit_bytes(2 * kMiB);
  too_small.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  EXPECT_EQ(Code(c().CreateVolume(too_small)), absl::StatusCode::kOutOfRange);

  auto clone = CreateReq("pvc-clone", 4 * kMiB, true);
  clone.mutable_volume_content_source()->mutable_volume()->set_volume_id(vol.volume_id());
  auto cl = MustCreate(clone);
  ASSERT_TRUE(cl.content_source().has_volume());
  EXPECT_EQ(cl.content_source().volume().volume_id(), vol.volume_id());
  // The same name from another source is a different volume.
  auto clash = clone;
  clash.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  EXPECT_EQ(Code(c().CreateVolume(clash)), absl::StatusCode::kAlreadyExists);
}

TEST_F(ControllerTest, VolumesAndSnapshotsSurviveADriverRestart) {
  auto vol = MustCreate(CreateReq("pvc-restart", 2 * kMiB, false));
  auto snap = MustSnapshot("snap-restart", vol.volume_id());
  RestartDriver();
  auto again = MustCreate(CreateReq("pvc-restart", 2 * kMiB, false));
  EXPECT_EQ(again.volume_id(), vol.volume_id());
  v1::ListSnapshotsRequest by_id;
  by_id.set_snapshot_id(snap.snapshot_id());
  auto l = c().ListSnapshots(by_id);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->entries_size(), 1);
  // A page token issued before the restart is still understood after it.
  MustCreate(CreateReq("pvc-restart-2", kMiB, true));
  v1::ListVolumesRequest first;
  first.set_max_entries(1);
  auto p1 = c().ListVolumes(first);
  ASSERT_TRUE(p1.ok());
  RestartDriver();
  v1::ListVolumesRequest rest;
  rest.set_starting_token(p1->next_token());
  auto p2 = c().ListVolumes(rest);
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(p2->entries_size(), 1);
}

}  // namespace
}  // namespace vdisk::csi::testing
