#include "tests/pool/pool_conformance.h"

#include <dirent.h>
#include <sys/stat.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/sync_io.h"
#include "clone/clone.h"
#include "snapshot/changed_blocks.h"
#include "snapshot/snapshot_policy.h"
#include "tests/pool/pool_test_util.h"
#include "tests/pool/status_macros.h"

namespace vdisk::pooltest {

using blockdev::AccessMode;
using blockdev::Snapshot;
using blockdev::Volume;
using blockdev::VolumeMode;
using blockdev::VolumeRequest;
using blockdev::VolumeSource;
using ::absl::StatusCode;

std::string BackendName(const ::testing::TestParamInfo<PoolBackend>& info) {
  return info.param.name;
}

void PrintTo(const PoolBackend& b, std::ostream* os) { *os << b.name; }

void PoolConformance::SetUp() {
  fixture_ = GetParam().make();
  Status s = fixture_->SetUp();
  ASSERT_TRUE(s.ok()) << "backend fixture SetUp failed: " << s;
  auto p = fixture_->Open();
  ASSERT_TRUE(p.ok()) << "opening the pool failed: " << p.status();
  pool_ = *p;
  caps_ = pool_->capabilities();
}

void PoolConformance::TearDown() {
  pool_.reset();
  if (fixture_) fixture_->TearDown();
}

void PoolConformance::Reopen() {
  pool_.reset();
  auto p = fixture_->Open();
  ASSERT_TRUE(p.ok()) << "reopening the pool failed: " << p.status();
  pool_ = *p;
}

uint64_t PoolConformance::SizeAtLeast(uint64_t min_bytes) const {
  uint64_t g = caps_.size_granularity ? caps_.size_granularity : 1;
  return (min_bytes + g - 1) / g * g;
}

Volume PoolConformance::MakeVolume(const std::string& name, uint64_t size, VolumeMode mode) {
  VolumeRequest req;
  req.name = name;
  req.size_bytes = SizeAtLeast(size);
  req.mode = mode;
  req.access_modes = {AccessMode::kSingleNodeWriter};
  auto v = pool_->create_volume(req);
  EXPECT_TRUE(v.ok()) << "create_volume(" << name << "): " << v.status();
  return v.ok() ? *v : Volume{};
}

namespace {
constexpr uint64_t kMiB = 1 << 20;

bool HasMode(const std::vector<VolumeMode>& modes, VolumeMode m) {
  return std::find(modes.begin(), modes.end(), m) != modes.end();
}

// Files anywhere under `dir` (recursively) whose name contains `token`.
void FindNamed(const std::string& dir, const std::string& token, int depth,
               std::vector<std::string>* out) {
  if (depth < 0) return;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = dir == "/" ? "/" + n : dir + "/" + n;
    if (n.find(token) != std::string::npos) out->push_back(p);
    if (e->d_type == DT_DIR) FindNamed(p, token, depth - 1, out);
  }
  ::closedir(d);
}

std::string Parent(const std::string& p) {
  auto pos = p.find_last_of('/');
  return pos == 0 || pos == std::string::npos ? "/" : p.substr(0, pos);
}
}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_P(PoolConformance, CapabilitiesAreCoherent) {
  EXPECT_FALSE(pool_->name().empty());
  EXPECT_FALSE(pool_->kind().empty());
  EXPECT_FALSE(caps_.modes.empty());
  if (HasMode(caps_.modes, VolumeMode::kBlock)) { EXPECT_FALSE(caps_.block_access_modes.empty()); }
  if (HasMode(caps_.modes, VolumeMode::kFilesystem)) {
    EXPECT_FALSE(caps_.filesystem_access_modes.empty());
  }
  EXPECT_GT(caps_.size_granularity, 0u);
  EXPECT_EQ(caps_.size_granularity & (caps_.size_granularity - 1), 0u) << "power of two";
  if (caps_.clone_from_snapshot || caps_.changed_extents) { EXPECT_TRUE(caps_.snapshots); }
  VT_ASSERT_OK_AND_ASSIGN(auto cap, pool_->capacity({}));
  EXPECT_GT(cap.total_bytes, 0u);
  EXPECT_LE(cap.available_bytes, cap.total_bytes);
}

TEST_P(PoolConformance, CreateGetListDeleteVolume) {
  for (VolumeMode mode : caps_.modes) {
    SCOPED_TRACE(std::string(ToString(mode)));
    std::string name = absl::StrCat("pvc-basic-", std::string(ToString(mode)));
    VolumeRequest req;
    req.name = name;
    req.size_bytes = SizeAtLeast(8 * kMiB);
    req.mode = mode;
    req.access_modes = {AccessMode::kSingleNodeWriter};
    VT_ASSERT_OK_AND_ASSIGN(Volume v, pool_->create_volume(req));
    EXPECT_FALSE(v.id.empty());
    EXPECT_EQ(v.id.find_first_not_of(
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"),
              std::string::npos);
    EXPECT_EQ(v.name, name);
    EXPECT_GE(v.size_bytes, req.size_bytes);
    EXPECT_EQ(v.mode, mode);
    EXPECT_FALSE(v.pending);
    EXPECT_GT(v.created_unix_ns, 0);

    VT_ASSERT_OK_AND_ASSIGN(Volume got, pool_->get_volume(v.id));
    EXPECT_EQ(got.id, v.id);
    EXPECT_EQ(got.name, name);
    EXPECT_EQ(got.size_bytes, v.size_bytes);
    EXPECT_EQ(got.mode, mode);
    EXPECT_EQ(got.access_modes, req.access_modes);
    EXPECT_EQ(got.created_unix_ns, v.created_unix_ns);

    VT_ASSERT_OK_AND_ASSIGN(auto found, pool_->find_volume_by_name(name));
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->id, v.id);

    VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id, v.id);

    // A new volume reads as zeroes and has its size.
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    EXPECT_EQ(dev->size(), v.size_bytes);
    VT_EXPECT_OK(CheckZeroes(*dev, 0, v.size_bytes));
    dev.reset();

    VT_ASSERT_OK(pool_->delete_volume(v.id));
    VT_EXPECT_CODE(pool_->get_volume(v.id), StatusCode::kNotFound);
    VT_ASSERT_OK_AND_ASSIGN(auto gone, pool_->find_volume_by_name(name));
    EXPECT_FALSE(gone.has_value());
    VT_ASSERT_OK_AND_ASSIGN(auto none, pool_->list_volumes());
    EXPECT_TRUE(none.empty());
  }
}

TEST_P(PoolConformance, DeleteIsIdempotent) {
  Volume v = MakeVolume("pvc-del", 4 * kMiB);
  VT_ASSERT_OK(pool_->delete_volume(v.id));
  VT_EXPECT_OK(pool_->delete_volume(v.id));
  // A well-formed id that never existed.
  VT_EXPECT_OK(pool_->delete_volume(v.id + "0"));
  VT_EXPECT_OK(pool_->delete_snapshot("never-existed-snapshot"));
}

TEST_P(PoolConformance, NameCollisionIsAlreadyExists) {
  Volume v = MakeVolume("pvc-taken", 4 * kMiB);
  VolumeRequest again;
  again.name = "pvc-taken";
  again.size_bytes = SizeAtLeast(4 * kMiB);
  VT_EXPECT_CODE(pool_->create_volume(again), StatusCode::kAlreadyExists);
  again.size_bytes = SizeAtLeast(16 * kMiB);  // incompatible too: still the same name
  VT_EXPECT_CODE(pool_->create_volume(again), StatusCode::kAlreadyExists);
  VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
  EXPECT_EQ(all.size(), 1u);
  VT_ASSERT_OK_AND_ASSIGN(auto found, pool_->find_volume_by_name("pvc-taken"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, v.id);
  // After deletion the name is free again, and the new volume gets a new id.
  VT_ASSERT_OK(pool_->delete_volume(v.id));
  Volume w = MakeVolume("pvc-taken", 4 * kMiB);
  EXPECT_NE(w.id, v.id);
}

TEST_P(PoolConformance, InvalidRequestsAreRejected) {
  VolumeRequest req;
  req.name = "";
  req.size_bytes = SizeAtLeast(4 * kMiB);
  VT_EXPECT_CODE(pool_->create_volume(req), StatusCode::kInvalidArgument);
  req.name = "pvc-zero";
  req.size_bytes = 0;
  VT_EXPECT_CODE(pool_->create_volume(req), StatusCode::kInvalidArgument);
  req.size_bytes = SizeAtLeast(4 * kMiB);
  req.params = {{"no-such-parameter-for-any-pool", "1"}};
  VT_EXPECT_CODE(pool_->create_volume(req), StatusCode::kInvalidArgument);
  VT_EXPECT_CODE(pool_->validate_params(req.params), StatusCode::kInvalidArgument);
  req.params.clear();
  req.source = {VolumeSource::Kind::kSnapshot, "no-such-snapshot"};
  req.pending = true;  // even a host-copy target needs its source to exist
  VT_EXPECT_CODE(pool_->create_volume(req), StatusCode::kNotFound);
  req.source = {VolumeSource::Kind::kVolume, "no-such-volume"};
  VT_EXPECT_CODE(pool_->create_volume(req), StatusCode::kNotFound);
  VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
  EXPECT_TRUE(all.empty()) << "a rejected request left a volume behind";
  VT_EXPECT_CODE(pool_->get_volume("no-such-volume"), StatusCode::kNotFound);
  VT_EXPECT_CODE(pool_->get_snapshot("no-such-snapshot"), StatusCode::kNotFound);
  VT_EXPECT_CODE(pool_->expand_volume("no-such-volume", SizeAtLeast(8 * kMiB)),
                 StatusCode::kNotFound);
  VT_EXPECT_CODE(pool_->open_volume("no-such-volume", true), StatusCode::kNotFound);
  VT_EXPECT_CODE(pool_->open_snapshot("no-such-snapshot"), StatusCode::kNotFound);
  VT_EXPECT_CODE(pool_->complete_volume("no-such-volume"), StatusCode::kNotFound);
  if (caps_.snapshots) {
    VT_EXPECT_CODE(pool_->create_snapshot("no-such-volume", "snap-x"), StatusCode::kNotFound);
    VT_ASSERT_OK_AND_ASSIGN(auto snaps, pool_->list_snapshots());
    EXPECT_TRUE(snaps.empty());
  }
}

TEST_P(PoolConformance, HostileIdsAndNamesStayInside) {
  const std::string token = absl::StrCat("vdisk-escape-", ::getpid(), "-", ::time(nullptr));
  const std::vector<std::string> bad_ids = {
      "",  ".", "..", "../" + token, "../../" + token, "/tmp/" + token, "a/../../" + token,
      token + "/..", std::string("nul\0", 4) + token, "..\\" + token};
  const auto expect_refused = [](const Status& s, bool ok_allowed, const std::string& what) {
    bool fine = s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ||
                (ok_allowed && s.ok());
    EXPECT_TRUE(fine) << what << ": " << s;
  };
  for (const auto& id : bad_ids) {
    SCOPED_TRACE(id);
    expect_refused(pool_->get_volume(id).status(), false, "get_volume");
    expect_refused(pool_->delete_volume(id), true, "delete_volume");
    expect_refused(pool_->expand_volume(id, SizeAtLeast(8 * kMiB)).status(), false, "expand");
    expect_refused(pool_->open_volume(id, false).status(), false, "open_volume");
    expect_refused(pool_->complete_volume(id), false, "complete_volume");
    expect_refused(pool_->get_snapshot(id).status(), false, "get_snapshot");
    expect_refused(pool_->delete_snapshot(id), true, "delete_snapshot");
    expect_refused(pool_->open_snapshot(id).status(), false, "open_snapshot");
    expect_refused(pool_->changed_extents("", id).status(), false, "changed_extents");
    expect_refused(pool_->attach(id, true, {}).status(), false, "attach");
    if (caps_.snapshots)
      expect_refused(pool_->create_snapshot(id, "snap-" + token).status(), false,
                     "create_snapshot");
    VolumeRequest req;
    req.name = "pvc-from-hostile";
    req.size_bytes = SizeAtLeast(4 * kMiB);
    req.source = {VolumeSource::Kind::kSnapshot, id};
    req.pending = true;
    expect_refused(pool_->create_volume(req).status(), false, "create_volume(source)");
  }
  // Hostile names are just names: they work and create no paths of their own.
  for (const std::string& name : {"../../" + token, "/tmp/" + token, token + "/../../x"}) {
    Volume v = MakeVolume(name, 4 * kMiB);
    ASSERT_FALSE(v.id.empty());
    EXPECT_EQ(v.id.find('/'), std::string::npos);
    VT_ASSERT_OK_AND_ASSIGN(auto found, pool_->find_volume_by_name(name));
    ASSERT_TRUE(found.has_value());
    if (caps_.snapshots) VT_EXPECT_OK(pool_->create_snapshot(v.id, name));
  }
  VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
  EXPECT_EQ(all.size(), 3u);
  std::string root = fixture_->HostRoot();
  if (root.empty()) return;
  std::vector<std::string> escaped;
  FindNamed(Parent(root), token, 1, &escaped);
  FindNamed(Parent(Parent(root)), token, 1, &escaped);
  FindNamed("/tmp", token, 1, &escaped);
  FindNamed("/", token, 0, &escaped);
  for (const auto& p : escaped)
    EXPECT_TRUE(p.starts_with(root + "/")) << "file created outside the pool root: " << p;
}

TEST_P(PoolConformance, DataRoundTripAndReadOnlyOpen) {
  Volume v = MakeVolume("pvc-data", 8 * kMiB);
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    EXPECT_FALSE(dev->read_only());
    VT_ASSERT_OK(WritePattern(*dev, 0, kMiB, 1));
    VT_ASSERT_OK(WritePattern(*dev, 5 * kMiB, 2 * kMiB, 2));
  }
  VT_ASSERT_OK_AND_ASSIGN(auto ro, pool_->open_volume(v.id, true));
  EXPECT_TRUE(ro->read_only());
  VT_EXPECT_OK(CheckPattern(*ro, 0, kMiB, 1));
  VT_EXPECT_OK(CheckZeroes(*ro, kMiB, 4 * kMiB));
  VT_EXPECT_OK(CheckPattern(*ro, 5 * kMiB, 2 * kMiB, 2));
  blockdev::AlignedBuffer buf(4096);
  VT_EXPECT_CODE(blockdev::WriteAt(*ro, 0, buf.span()), StatusCode::kPermissionDenied);
}

TEST_P(PoolConformance, ExpandGrowsKeepsDataAndRefusesShrink) {
  Volume v = MakeVolume("pvc-grow", 4 * kMiB);
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    VT_ASSERT_OK(WritePattern(*dev, 0, v.size_bytes, 7));
  }
  const uint64_t bigger = SizeAtLeast(v.size_bytes + 8 * kMiB);
  VT_ASSERT_OK_AND_ASSIGN(uint64_t got, pool_->expand_volume(v.id, bigger));
  EXPECT_GE(got, bigger);
  VT_ASSERT_OK_AND_ASSIGN(uint64_t again, pool_->expand_volume(v.id, bigger));
  EXPECT_EQ(again, got) << "expand is idempotent";
  VT_EXPECT_CODE(pool_->expand_volume(v.id, v.size_bytes), StatusCode::kOutOfRange)
      << "a shrink";
  VT_EXPECT_CODE(pool_->expand_volume(v.id, 0), StatusCode::kInvalidArgument);
  VT_ASSERT_OK_AND_ASSIGN(Volume after, pool_->get_volume(v.id));
  EXPECT_EQ(after.size_bytes, got);
  VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, true));
  EXPECT_EQ(dev->size(), got);
  VT_EXPECT_OK(CheckPattern(*dev, 0, v.size_bytes, 7));
  VT_EXPECT_OK(CheckZeroes(*dev, v.size_bytes, got - v.size_bytes));
}

TEST_P(PoolConformance, PendingVolumeLifecycle) {
  VolumeRequest req;
  req.name = "pvc-pending";
  req.size_bytes = SizeAtLeast(4 * kMiB);
  req.pending = true;
  VT_ASSERT_OK_AND_ASSIGN(Volume v, pool_->create_volume(req));
  EXPECT_TRUE(v.pending);
  VT_ASSERT_OK_AND_ASSIGN(auto found, pool_->find_volume_by_name(req.name));
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->pending);
  VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].pending);
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    VT_ASSERT_OK(WritePattern(*dev, 0, kMiB, 3));
  }
  if (caps_.snapshots) {
    VT_EXPECT_CODE(pool_->create_snapshot(v.id, "snap-of-pending"),
                   StatusCode::kFailedPrecondition);
  }
  VT_ASSERT_OK(pool_->complete_volume(v.id));
  VT_ASSERT_OK(pool_->complete_volume(v.id));  // idempotent
  VT_ASSERT_OK_AND_ASSIGN(Volume done, pool_->get_volume(v.id));
  EXPECT_FALSE(done.pending);
  // A pending volume can be deleted (clean-up of a failed copy).
  req.name = "pvc-pending-2";
  VT_ASSERT_OK_AND_ASSIGN(Volume w, pool_->create_volume(req));
  VT_ASSERT_OK(pool_->delete_volume(w.id));
  VT_EXPECT_CODE(pool_->get_volume(w.id), StatusCode::kNotFound);
}

TEST_P(PoolConformance, SnapshotLifecycle) {
  if (!caps_.snapshots) GTEST_SKIP() << "pool has no snapshots";
  Volume v = MakeVolume("pvc-snapsrc", 8 * kMiB);
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-1"));
  EXPECT_FALSE(s.id.empty());
  EXPECT_EQ(s.name, "snap-1");
  EXPECT_EQ(s.source_volume_id, v.id);
  EXPECT_EQ(s.size_bytes, v.size_bytes);
  EXPECT_TRUE(s.ready);
  EXPECT_GT(s.created_unix_ns, 0);
  VT_EXPECT_CODE(pool_->create_snapshot(v.id, "snap-1"), StatusCode::kAlreadyExists);
  // The policy layer turns the repeat into the same snapshot, and refuses another volume's.
  VT_ASSERT_OK_AND_ASSIGN(Snapshot same, snapshot::CreateSnapshot(*pool_, v.id, "snap-1"));
  EXPECT_EQ(same.id, s.id);
  Volume other = MakeVolume("pvc-other", 4 * kMiB);
  VT_EXPECT_CODE(snapshot::CreateSnapshot(*pool_, other.id, "snap-1"), StatusCode::kAlreadyExists);

  VT_ASSERT_OK_AND_ASSIGN(Snapshot got, pool_->get_snapshot(s.id));
  EXPECT_EQ(got.name, "snap-1");
  EXPECT_EQ(got.size_bytes, s.size_bytes);
  EXPECT_EQ(got.created_unix_ns, s.created_unix_ns);
  VT_ASSERT_OK_AND_ASSIGN(auto found, pool_->find_snapshot_by_name("snap-1"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, s.id);
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s2, pool_->create_snapshot(v.id, "snap-2"));
  VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_snapshots());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_LT(all[0].id, all[1].id) << "ordered by id";
  VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_snapshot(s.id));
  EXPECT_TRUE(dev->read_only());
  EXPECT_EQ(dev->size(), s.size_bytes);
  dev.reset();
  VT_ASSERT_OK(pool_->delete_snapshot(s.id));
  VT_ASSERT_OK(pool_->delete_snapshot(s.id));
  VT_EXPECT_CODE(pool_->get_snapshot(s.id), StatusCode::kNotFound);
  VT_ASSERT_OK_AND_ASSIGN(auto left, pool_->list_snapshots());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, s2.id);
  // Snapshot size follows the volume at snapshot time.
  VT_ASSERT_OK_AND_ASSIGN(uint64_t grown, pool_->expand_volume(v.id, SizeAtLeast(16 * kMiB)));
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s3, pool_->create_snapshot(v.id, "snap-3"));
  EXPECT_EQ(s3.size_bytes, grown);
}

TEST_P(PoolConformance, SnapshotIsPointInTime) {
  if (!caps_.snapshots) GTEST_SKIP() << "pool has no snapshots";
  Volume v = MakeVolume("pvc-pit", 8 * kMiB);
  VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
  VT_ASSERT_OK(WritePattern(*dev, 0, 8 * kMiB, 11));
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-pit"));
  VT_ASSERT_OK(WritePattern(*dev, 2 * kMiB, 2 * kMiB, 12));
  VT_ASSERT_OK(blockdev::Discard(*dev, 6 * kMiB, kMiB));
  VT_ASSERT_OK_AND_ASSIGN(auto snap, pool_->open_snapshot(s.id));
  VT_EXPECT_OK(CheckPattern(*snap, 0, 8 * kMiB, 11));
  VT_EXPECT_OK(CheckPattern(*dev, 2 * kMiB, 2 * kMiB, 12));
  VT_EXPECT_OK(CheckZeroes(*dev, 6 * kMiB, kMiB));
}

TEST_P(PoolConformance, SnapshotPolicyNeverSubstitutesAHostCopy) {
  Volume v = MakeVolume("pvc-policy", 4 * kMiB);
  auto s = snapshot::CreateSnapshot(*pool_, v.id, "snap-policy");
  if (caps_.snapshots) {
    VT_EXPECT_OK(s);
  } else {
    VT_EXPECT_CODE(s, StatusCode::kFailedPrecondition);
  }
}

// Clones, through clone/ (offload, snapshot-based or host copy as the pool allows) and forced
// host copy. Bytes must match through open_volume/open_snapshot; a larger target's tail is zero.
TEST_P(PoolConformance, CloneFromSnapshotMatchesBytes) {
  if (!caps_.snapshots) GTEST_SKIP() << "pool has no snapshots";
  Volume v = MakeVolume("pvc-clonesrc", 8 * kMiB);
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    VT_ASSERT_OK(WritePattern(*dev, 0, kMiB, 21));
    VT_ASSERT_OK(WritePattern(*dev, 6 * kMiB, 2 * kMiB, 22));
  }
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-clonesrc"));
  VT_ASSERT_OK_AND_ASSIGN(auto sdev, pool_->open_snapshot(s.id));
  VT_ASSERT_OK_AND_ASSIGN(std::string want, Digest(*sdev));

  for (auto strategy : {clone::Strategy::kAuto, clone::Strategy::kHostCopy}) {
    SCOPED_TRACE(std::string(clone::ToString(strategy)));
    VolumeRequest req;
    req.name = absl::StrCat("pvc-restore-", std::string(clone::ToString(strategy)));
    req.size_bytes = SizeAtLeast(v.size_bytes + 4 * kMiB);  // larger than the source
    req.source = {VolumeSource::Kind::kSnapshot, s.id};
    clone::CloneOptions opts;
    opts.strategy = strategy;
    clone::CloneReport report;
    VT_ASSERT_OK_AND_ASSIGN(Volume c, clone::CreateVolumeFromSource(*pool_, req, opts, &report));
    EXPECT_FALSE(c.pending);
    EXPECT_EQ(c.source, req.source);
    EXPECT_GE(c.size_bytes, req.size_bytes);
    if (strategy == clone::Strategy::kAuto) {
      EXPECT_EQ(report.strategy, caps_.clone_from_snapshot ? clone::Strategy::kOffload
                                                           : clone::Strategy::kHostCopy);
    }
    VT_ASSERT_OK_AND_ASSIGN(auto cdev, pool_->open_volume(c.id, true));
    EXPECT_EQ(cdev->size(), c.size_bytes);
    VT_ASSERT_OK_AND_ASSIGN(std::string got, Digest(*cdev, s.size_bytes));
    EXPECT_EQ(got, want);
    VT_EXPECT_OK(CheckZeroes(*cdev, s.size_bytes, c.size_bytes - s.size_bytes));
    // A retry of the same request returns the same volume.
    clone::CloneReport again;
    VT_ASSERT_OK_AND_ASSIGN(Volume c2, clone::CreateVolumeFromSource(*pool_, req, opts, &again));
    EXPECT_EQ(c2.id, c.id);
    EXPECT_TRUE(again.already_done);
    // The clone is independent of the snapshot.
    VT_ASSERT_OK_AND_ASSIGN(auto w, pool_->open_volume(c.id, false));
    VT_ASSERT_OK(WritePattern(*w, 0, kMiB, 23));
    VT_ASSERT_OK_AND_ASSIGN(std::string still, Digest(*sdev));
    EXPECT_EQ(still, want);
  }
  // Smaller than the source: OUT_OF_RANGE, nothing left behind.
  VolumeRequest small;
  small.name = "pvc-restore-small";
  small.size_bytes = SizeAtLeast(kMiB);
  small.source = {VolumeSource::Kind::kSnapshot, s.id};
  if (small.size_bytes < s.size_bytes) {
    VT_EXPECT_CODE(clone::CreateVolumeFromSource(*pool_, small), StatusCode::kOutOfRange);
    VT_ASSERT_OK_AND_ASSIGN(auto none, pool_->find_volume_by_name(small.name));
    EXPECT_FALSE(none.has_value());
  }
  // Same name, other source: ALREADY_EXISTS.
  VolumeRequest clash;
  clash.name = "pvc-restore-auto";
  clash.source = {VolumeSource::Kind::kVolume, v.id};
  VT_EXPECT_CODE(clone::CreateVolumeFromSource(*pool_, clash), StatusCode::kAlreadyExists);
}

TEST_P(PoolConformance, CloneFromVolumeMatchesBytes) {
  Volume v = MakeVolume("pvc-vsrc", 8 * kMiB);
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    VT_ASSERT_OK(WritePattern(*dev, kMiB, 3 * kMiB, 31));
  }
  VT_ASSERT_OK_AND_ASSIGN(auto vdev, pool_->open_volume(v.id, true));
  VT_ASSERT_OK_AND_ASSIGN(std::string want, Digest(*vdev));
  for (auto strategy : {clone::Strategy::kAuto, clone::Strategy::kHostCopy}) {
    SCOPED_TRACE(std::string(clone::ToString(strategy)));
    VolumeRequest req;
    req.name = absl::StrCat("pvc-vclone-", std::string(clone::ToString(strategy)));
    req.size_bytes = 0;  // the source's size
    req.mode = VolumeMode::kFilesystem;  // modes may differ from the source
    req.source = {VolumeSource::Kind::kVolume, v.id};
    clone::CloneOptions opts;
    opts.strategy = strategy;
    if (!HasMode(caps_.modes, VolumeMode::kFilesystem)) req.mode = VolumeMode::kBlock;
    VT_ASSERT_OK_AND_ASSIGN(Volume c, clone::CreateVolumeFromSource(*pool_, req, opts));
    EXPECT_EQ(c.size_bytes, v.size_bytes);
    EXPECT_FALSE(c.pending);
    VT_ASSERT_OK_AND_ASSIGN(auto cdev, pool_->open_volume(c.id, true));
    VT_ASSERT_OK_AND_ASSIGN(std::string got, Digest(*cdev));
    EXPECT_EQ(got, want);
  }
  // Offload straight through the pool when it says it can.
  if (caps_.clone_from_volume) {
    VolumeRequest req;
    req.name = "pvc-vclone-direct";
    req.size_bytes = v.size_bytes;
    req.source = {VolumeSource::Kind::kVolume, v.id};
    VT_ASSERT_OK_AND_ASSIGN(Volume c, pool_->create_volume(req));
    EXPECT_EQ(c.source, req.source);
    VT_ASSERT_OK_AND_ASSIGN(auto cdev, pool_->open_volume(c.id, true));
    VT_ASSERT_OK_AND_ASSIGN(std::string got, Digest(*cdev));
    EXPECT_EQ(got, want);
  } else {
    VolumeRequest req;
    req.name = "pvc-vclone-direct";
    req.size_bytes = v.size_bytes;
    req.source = {VolumeSource::Kind::kVolume, v.id};
    VT_EXPECT_CODE(pool_->create_volume(req), StatusCode::kUnimplemented);
  }
}

TEST_P(PoolConformance, InterruptedHostCopyIsResumedByARetry) {
  Volume v = MakeVolume("pvc-resume-src", 8 * kMiB);
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    VT_ASSERT_OK(WritePattern(*dev, 0, 8 * kMiB, 41));
  }
  // A crashed host copy leaves a pending volume with partial (here: wrong) data.
  VolumeRequest req;
  req.name = "pvc-resumed";
  req.size_bytes = v.size_bytes;
  req.source = {VolumeSource::Kind::kVolume, v.id};
  VolumeRequest pending = req;
  pending.pending = true;
  VT_ASSERT_OK_AND_ASSIGN(Volume p, pool_->create_volume(pending));
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(p.id, false));
    VT_ASSERT_OK(WritePattern(*dev, 0, 8 * kMiB, 99));  // stale garbage everywhere
  }
  {
    VT_ASSERT_OK_AND_ASSIGN(auto src, pool_->open_volume(v.id, false));
    VT_ASSERT_OK(blockdev::Discard(*src, 4 * kMiB, 2 * kMiB));  // source has a hole now
  }
  clone::CloneReport report;
  VT_ASSERT_OK_AND_ASSIGN(Volume c, clone::CreateVolumeFromSource(*pool_, req, {}, &report));
  EXPECT_EQ(c.id, p.id);
  EXPECT_TRUE(report.resumed);
  EXPECT_FALSE(c.pending);
  VT_ASSERT_OK_AND_ASSIGN(auto a, pool_->open_volume(v.id, true));
  VT_ASSERT_OK_AND_ASSIGN(auto b, pool_->open_volume(c.id, true));
  VT_ASSERT_OK_AND_ASSIGN(std::string da, Digest(*a));
  VT_ASSERT_OK_AND_ASSIGN(std::string db, Digest(*b));
  EXPECT_EQ(da, db) << "stale data in the source's hole survived the retry";
}

TEST_P(PoolConformance, DeletingAVolumeKeepsItsSnapshotsAndClones) {
  if (!caps_.snapshots) GTEST_SKIP() << "pool has no snapshots";
  Volume v = MakeVolume("pvc-parent", 8 * kMiB);
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    VT_ASSERT_OK(WritePattern(*dev, 0, 8 * kMiB, 51));
  }
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-orphan"));
  VolumeRequest req;
  req.name = "pvc-child";
  req.source = {VolumeSource::Kind::kVolume, v.id};
  VT_ASSERT_OK_AND_ASSIGN(Volume child, clone::CreateVolumeFromSource(*pool_, req));
  VT_ASSERT_OK(pool_->delete_volume(v.id));
  VT_ASSERT_OK_AND_ASSIGN(Snapshot still, pool_->get_snapshot(s.id));
  EXPECT_EQ(still.source_volume_id, v.id);
  VT_ASSERT_OK_AND_ASSIGN(auto sdev, pool_->open_snapshot(s.id));
  VT_EXPECT_OK(CheckPattern(*sdev, 0, 8 * kMiB, 51));
  VT_ASSERT_OK_AND_ASSIGN(auto cdev, pool_->open_volume(child.id, true));
  VT_EXPECT_OK(CheckPattern(*cdev, 0, 8 * kMiB, 51));
  // Restore from the orphaned snapshot still works.
  VolumeRequest restore;
  restore.name = "pvc-restored-orphan";
  restore.source = {VolumeSource::Kind::kSnapshot, s.id};
  VT_ASSERT_OK_AND_ASSIGN(Volume r, clone::CreateVolumeFromSource(*pool_, restore));
  VT_ASSERT_OK_AND_ASSIGN(auto rdev, pool_->open_volume(r.id, true));
  VT_EXPECT_OK(CheckPattern(*rdev, 0, 8 * kMiB, 51));
}

TEST_P(PoolConformance, ChangeMapsCoverEveryWrite) {
  if (!caps_.snapshots) GTEST_SKIP() << "pool has no snapshots";
  const uint64_t size = SizeAtLeast(32 * kMiB);
  Volume v = MakeVolume("pvc-cbt", size);
  VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
  VT_ASSERT_OK(WritePattern(*dev, 0, 4 * kMiB, 61));
  VT_ASSERT_OK(WritePattern(*dev, 20 * kMiB, 2 * kMiB, 61));
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s1, pool_->create_snapshot(v.id, "snap-cbt-1"));
  // Known changes: two small writes and one overwrite of existing data.
  const blockdev::ExtentList written = {
      {kMiB, 64 * 1024}, {10 * kMiB, 128 * 1024}, {21 * kMiB, 4096}};
  for (const auto& e : written) VT_ASSERT_OK(WritePattern(*dev, e.offset, e.length, 62));
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s2, pool_->create_snapshot(v.id, "snap-cbt-2"));
  dev.reset();

  auto covers = [](const blockdev::ExtentList& map, const blockdev::Extent& e) {
    for (const auto& m : map)
      if (m.offset <= e.offset && m.end() >= e.end()) return true;
    return false;
  };
  // Through the pool where it can (else read-compare), and forced read-compare.
  VT_ASSERT_OK_AND_ASSIGN(auto best, snapshot::ChangedBlocks(*pool_, s1.id, s2.id));
  EXPECT_EQ(best.size_bytes, s2.size_bytes);
  for (const auto& e : written) EXPECT_TRUE(covers(best.extents, e)) << e.offset;
  // Not everything: unchanged data is not reported (allow coarse backends 4 MiB per write).
  EXPECT_LE(blockdev::TotalBytes(best.extents), 3 * 4 * kMiB)
      << "source " << snapshot::ToString(best.source);
  VT_ASSERT_OK_AND_ASSIGN(auto a, pool_->open_snapshot(s1.id));
  VT_ASSERT_OK_AND_ASSIGN(auto b, pool_->open_snapshot(s2.id));
  VT_ASSERT_OK_AND_ASSIGN(auto exact, snapshot::CompareDevices(*a, *b));
  EXPECT_EQ(exact.extents, written) << "read-compare is exact at 4 KiB";
  // Identical snapshots: empty map.
  VT_ASSERT_OK_AND_ASSIGN(Snapshot s3, pool_->create_snapshot(v.id, "snap-cbt-3"));
  VT_ASSERT_OK_AND_ASSIGN(auto none, snapshot::ChangedBlocks(*pool_, s2.id, s3.id));
  EXPECT_TRUE(none.extents.empty()) << blockdev::TotalBytes(none.extents);
  // Allocation map of the first snapshot covers its data and not much more.
  VT_ASSERT_OK_AND_ASSIGN(auto alloc, snapshot::AllocatedBlocks(*pool_, s1.id));
  EXPECT_TRUE(covers(alloc.extents, {0, 4 * kMiB}));
  EXPECT_TRUE(covers(alloc.extents, {20 * kMiB, 2 * kMiB}));
  EXPECT_LE(blockdev::TotalBytes(alloc.extents), 6 * kMiB + 2 * 4 * kMiB);
  // Snapshots of different volumes cannot be compared.
  Volume other = MakeVolume("pvc-cbt-other", 4 * kMiB);
  VT_ASSERT_OK_AND_ASSIGN(Snapshot so, pool_->create_snapshot(other.id, "snap-cbt-other"));
  VT_EXPECT_CODE(snapshot::ChangedBlocks(*pool_, s1.id, so.id), StatusCode::kInvalidArgument);
}

TEST_P(PoolConformance, RestartFindsEverything) {
  Volume a = MakeVolume("pvc-keep-a", 4 * kMiB);
  Volume b = MakeVolume("pvc-keep-b", 8 * kMiB,
                        HasMode(caps_.modes, VolumeMode::kFilesystem) ? VolumeMode::kFilesystem
                                                                      : VolumeMode::kBlock);
  VolumeRequest preq;
  preq.name = "pvc-keep-pending";
  preq.size_bytes = SizeAtLeast(4 * kMiB);
  preq.pending = true;
  VT_ASSERT_OK_AND_ASSIGN(Volume p, pool_->create_volume(preq));
  {
    VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(b.id, false));
    VT_ASSERT_OK(WritePattern(*dev, 0, 2 * kMiB, 71));
  }
  Snapshot s;
  if (caps_.snapshots) {
    VT_ASSERT_OK_AND_ASSIGN(s, pool_->create_snapshot(b.id, "snap-keep"));
  }
  VT_ASSERT_OK_AND_ASSIGN(auto before, pool_->list_volumes());
  Reopen();
  VT_ASSERT_OK_AND_ASSIGN(auto after, pool_->list_volumes());
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].name, before[i].name);
    EXPECT_EQ(after[i].size_bytes, before[i].size_bytes);
    EXPECT_EQ(after[i].mode, before[i].mode);
    EXPECT_EQ(after[i].pending, before[i].pending);
    EXPECT_EQ(after[i].created_unix_ns, before[i].created_unix_ns);
  }
  VT_ASSERT_OK_AND_ASSIGN(auto fp, pool_->find_volume_by_name("pvc-keep-pending"));
  ASSERT_TRUE(fp.has_value());
  EXPECT_TRUE(fp->pending);
  EXPECT_EQ(fp->id, p.id);
  VT_ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(b.id, true));
  VT_EXPECT_OK(CheckPattern(*dev, 0, 2 * kMiB, 71));
  if (caps_.snapshots) {
    VT_ASSERT_OK_AND_ASSIGN(Snapshot again, pool_->get_snapshot(s.id));
    EXPECT_EQ(again.name, "snap-keep");
    EXPECT_EQ(again.created_unix_ns, s.created_unix_ns);
    VT_ASSERT_OK_AND_ASSIGN(auto sdev, pool_->open_snapshot(s.id));
    VT_EXPECT_OK(CheckPattern(*sdev, 0, 2 * kMiB, 71));
  }
  // Names stay taken across the restart.
  VolumeRequest dup;
  dup.name = "pvc-keep-a";
  dup.size_bytes = SizeAtLeast(4 * kMiB);
  VT_EXPECT_CODE(pool_->create_volume(dup), StatusCode::kAlreadyExists);
  (void)a;
}

TEST_P(PoolConformance, CrashLeftoversAreSweptAndNeverListed) {
  Volume keep = MakeVolume("pvc-survivor", 4 * kMiB);
  Snapshot ks;
  if (caps_.snapshots) {
    VT_ASSERT_OK_AND_ASSIGN(ks, pool_->create_snapshot(keep.id, "snap-survivor"));
  }
  pool_.reset();
  Status s = fixture_->MakeCrashLeftovers();
  if (absl::IsUnimplemented(s)) GTEST_SKIP() << "backend has no crash-leftover hook: " << s;
  VT_ASSERT_OK(s);
  Reopen();
  VT_ASSERT_OK_AND_ASSIGN(auto vols, pool_->list_volumes());
  ASSERT_EQ(vols.size(), 1u);
  EXPECT_EQ(vols[0].id, keep.id);
  if (caps_.snapshots) {
    VT_ASSERT_OK_AND_ASSIGN(auto snaps, pool_->list_snapshots());
    ASSERT_EQ(snaps.size(), 1u);
    EXPECT_EQ(snaps[0].id, ks.id);
  }
  EXPECT_TRUE(fixture_->LeftoversGone());
  // The names the interrupted operations used are free.
  MakeVolume("pvc-crashed", 4 * kMiB);
  if (caps_.snapshots) VT_EXPECT_OK(pool_->create_snapshot(keep.id, "snap-crashed"));
}

TEST_P(PoolConformance, ConcurrentCreatesOfDistinctVolumes) {
  constexpr int kThreads = 8, kPerThread = 4;
  std::vector<std::thread> threads;
  std::vector<std::vector<Status>> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        VolumeRequest req;
        req.name = absl::StrCat("pvc-par-", t, "-", i);
        req.size_bytes = SizeAtLeast(4 * kMiB);
        req.mode = i % 2 ? VolumeMode::kBlock : caps_.modes.back();
        results[t].push_back(pool_->create_volume(req).status());
        if (caps_.snapshots && i == 0) {
          auto v = pool_->find_volume_by_name(req.name);
          if (v.ok() && *v)
            results[t].push_back(
                pool_->create_snapshot((*v)->id, absl::StrCat("snap-par-", t)).status());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results)
    for (const auto& s : r) EXPECT_TRUE(s.ok()) << s;
  VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> ids, names;
  for (const auto& v : all) {
    ids.insert(v.id);
    names.insert(v.name);
  }
  EXPECT_EQ(ids.size(), all.size());
  EXPECT_EQ(names.size(), all.size());
  if (caps_.snapshots) {
    VT_ASSERT_OK_AND_ASSIGN(auto snaps, pool_->list_snapshots());
    EXPECT_EQ(snaps.size(), static_cast<size_t>(kThreads));
  }
}

TEST_P(PoolConformance, ConcurrentCreatesOfOneNameMakeOneVolume) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      VolumeRequest req;
      req.name = "pvc-race";
      req.size_bytes = SizeAtLeast(4 * kMiB);
      results[t] = pool_->create_volume(req).status();
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  int ok = 0;
  for (const auto& s : results) {
    if (s.ok()) ++ok;
    else
      EXPECT_TRUE(s.code() == StatusCode::kAlreadyExists || s.code() == StatusCode::kAborted)
          << s;
  }
  EXPECT_EQ(ok, 1);
  VT_ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
  EXPECT_EQ(all.size(), 1u);
}

TEST_P(PoolConformance, CapacityIsReported) {
  VT_ASSERT_OK_AND_ASSIGN(auto cap, pool_->capacity({}));
  EXPECT_GT(cap.total_bytes, 0u);
  VT_EXPECT_CODE(pool_->capacity({{"no-such-parameter-for-any-pool", "x"}}),
                 StatusCode::kInvalidArgument);
}

}  // namespace vdisk::pooltest
