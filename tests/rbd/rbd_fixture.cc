#include "tests/rbd/rbd_fixture.h"

#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/cluster.h"
#include "blockdev/rbd/journal.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "blockdev/rbd/records.h"

namespace vdisk::pooltest {

namespace rbdb = vdisk::blockdev::rbd;

namespace {

constexpr int64_t kHourNs = 3600LL * 1000 * 1000 * 1000;

struct Handles {
  std::shared_ptr<rbdb::Cluster> cluster;
  rbdb::IoCtx io;
};

StatusOr<Handles> Connect(const vdisk::testing::CephEnv& env) {
  rbdb::ClusterOptions o;
  o.conf = env.conf;
  o.user = env.driver_user;
  o.keyring = env.driver_keyring;
  Handles h;
  ASSIGN_OR_RETURN(h.cluster, rbdb::Cluster::Connect(o));
  ASSIGN_OR_RETURN(h.io, rbdb::IoCtx::Open(h.cluster, env.rbd_pool));
  return h;
}

std::string JournalObject(const std::string& instance) {
  return "vdisk.journal." + instance;
}

bool ImageExists(rados_ioctx_t io, const std::string& name) {
  rbd_image_t img;
  int r = rbd_open_read_only(io, name.c_str(), &img, nullptr);
  if (r < 0) return r != -ENOENT;
  rbd_close(img);
  return true;
}

bool SnapExists(rados_ioctx_t io, const std::string& image_id, const std::string& snap) {
  rbd_image_t img;
  if (rbd_open_by_id_read_only(io, image_id.c_str(), &img, nullptr) < 0) return false;
  bool exists = false;
  rbd_snap_exists(img, snap.c_str(), &exists);
  rbd_close(img);
  return exists;
}

Status CreateTaggedImage(rados_ioctx_t io, const std::string& name, const std::string& id) {
  int order = 0;
  int r = rbd_create2(io, name.c_str(), 4 << 20, RBD_FEATURE_LAYERING, &order);
  if (r < 0) return rbdb::RadosError(r, "rbd_create2");
  rbd_image_t img;
  r = rbd_open(io, name.c_str(), &img, nullptr);
  if (r < 0) return rbdb::RadosError(r, "rbd_open");
  r = rbd_metadata_set(img, "vdisk.id", id.c_str());
  rbd_close(img);
  return r < 0 ? rbdb::RadosError(r, "rbd_metadata_set") : Status();
}

Status CreateSnap(rados_ioctx_t io, const std::string& image_id, const std::string& snap) {
  rbd_image_t img;
  int r = rbd_open_by_id(io, image_id.c_str(), &img, nullptr);
  if (r < 0) return rbdb::RadosError(r, "rbd_open_by_id");
  r = rbd_snap_create(img, snap.c_str());
  rbd_close(img);
  return r < 0 ? rbdb::RadosError(r, "rbd_snap_create") : Status();
}

}  // namespace

blockdev::PoolConfig RbdPoolFixture::config() const {
  blockdev::Params extra = extra_;
  extra["instance"] = instance_;
  return vdisk::testing::RbdPoolConfig(env_, "rbd", extra);
}

Status RbdPoolFixture::SetUp() {
  ASSIGN_OR_RETURN(env_, vdisk::testing::LoadCephEnv());
  std::string unique = vdisk::testing::UniqueName("ct");
  for (char& c : unique)
    if (c == '.') c = '-';
  instance_ = unique;
  return Status();
}

StatusOr<std::shared_ptr<blockdev::Pool>> RbdPoolFixture::Open() {
  return vdisk::testing::OpenPool(config());
}

void RbdPoolFixture::TearDown() {
  // Through the pool first: that is how a user cleans up, and it exercises GC.
  if (auto pool = Open(); pool.ok()) {
    if (auto snaps = (*pool)->list_snapshots(); snaps.ok())
      for (const auto& s : *snaps) (void)(*pool)->delete_snapshot(s.id);
    if (auto vols = (*pool)->list_volumes(); vols.ok())
      for (const auto& v : *vols) (void)(*pool)->delete_volume(v.id);
    if (auto* impl = dynamic_cast<rbdb::RbdPool*>(pool->get())) impl->WaitForBackgroundWork();
  }
  // Then whatever is left (a failed test), straight from the journal.
  auto h = Connect(env_);
  if (!h.ok()) return;
  rbdb::Journal journal(&h->io, JournalObject(instance_));
  for (int pass = 0; pass < 10; ++pass) {
    auto vols = journal.List("v/");
    if (!vols.ok() || vols->empty()) break;
    for (const auto& [key, raw] : *vols) {
      auto rec = rbdb::VolumeRecordFromJson(raw);
      if (!rec.ok()) {
        if (auto held = journal.Acquire(); held.ok()) (void)journal.Update({}, {key});
        continue;
      }
      rbd_image_t img;
      if (rbd_open(h->io.get(), rec->image.c_str(), &img, nullptr) == 0) {
        int max = 64;
        std::vector<rbd_snap_info_t> snaps(max);
        int n = rbd_snap_list(img, snaps.data(), &max);
        for (int i = 0; i < n; ++i) rbd_snap_remove(img, snaps[i].name);
        if (n >= 0) rbd_snap_list_end(snaps.data());
        rbd_close(img);
      }
      int r = rbd_remove(h->io.get(), rec->image.c_str());
      if (r == 0 || r == -ENOENT)
        if (auto held = journal.Acquire(); held.ok()) (void)journal.Update({}, {key});
    }
  }
  if (auto left = journal.List("v/"); left.ok() && !left->empty())
    ADD_FAILURE() << left->size() << " volume record(s) of " << instance_
                  << " could not be cleaned up";
  rados_remove(h->io.get(), JournalObject(instance_).c_str());
}

Status RbdPoolFixture::MakeCrashLeftovers() {
  ASSIGN_OR_RETURN(Handles h, Connect(env_));
  rbdb::Journal journal(&h.io, JournalObject(instance_));
  // Written as a crashed vdisk process would have: under the journal lock.
  ASSIGN_OR_RETURN(rbdb::Journal::Lock held, journal.Acquire());
  const int64_t old = rbdb::NowUnixNs() - kHourNs;

  // (a) A create that died after making and tagging its image.
  rbdb::VolumeRecord a;
  a.name = "pvc-crashed";
  a.rbd_pool = env_.rbd_pool;
  a.image = rbdb::NewImageName();
  a.id = rbdb::MakeVolumeId(a.rbd_pool, a.image);
  a.size_bytes = 4 << 20;
  a.state = rbdb::RecordState::kCreating;
  a.owner = "a-crashed-process";
  a.created_unix_ns = a.updated_unix_ns = old;
  RETURN_IF_ERROR(CreateTaggedImage(h.io.get(), a.image, a.id));
  RETURN_IF_ERROR(journal.Update({{rbdb::VolumeKey(a.id), rbdb::ToJson(a)},
                                  {rbdb::VolumeNameKey(a.name), a.id}}));
  crashed_image_ = a.image;

  // The survivor volume's image, for the snapshot leftovers.
  ASSIGN_OR_RETURN(auto survivor_id, journal.Get(rbdb::VolumeNameKey("pvc-survivor")));
  if (!survivor_id) return absl::FailedPreconditionError("no pvc-survivor in the journal");
  ASSIGN_OR_RETURN(auto survivor_raw, journal.Get(rbdb::VolumeKey(*survivor_id)));
  if (!survivor_raw) return absl::FailedPreconditionError("no pvc-survivor record");
  ASSIGN_OR_RETURN(rbdb::VolumeRecord survivor, rbdb::VolumeRecordFromJson(*survivor_raw));

  // (b) A snapshot create that died after the RBD snapshot was taken.
  rbdb::SnapshotRecord b;
  b.name = "snap-crashed";
  b.source_volume_id = survivor.id;
  b.rbd_pool = survivor.rbd_pool;
  b.image = survivor.image;
  b.image_id = survivor.image_id;
  b.snap = rbdb::NewSnapName();
  b.id = rbdb::MakeSnapshotId(b.rbd_pool, b.image, b.snap);
  b.state = rbdb::RecordState::kCreating;
  b.owner = "a-crashed-process";
  b.created_unix_ns = b.updated_unix_ns = old;
  RETURN_IF_ERROR(CreateSnap(h.io.get(), b.image_id, b.snap));
  RETURN_IF_ERROR(journal.Update({{rbdb::SnapshotKey(b.id), rbdb::ToJson(b)},
                                  {rbdb::SnapshotNameKey(b.name), b.id}}));
  crashed_snap_image_id_ = b.image_id;
  crashed_snap_ = b.snap;

  // (c) A volume deleted (committed) whose image removal never ran.
  rbdb::VolumeRecord c = a;
  c.name = "pvc-deleted-midway";
  c.image = rbdb::NewImageName();
  c.id = rbdb::MakeVolumeId(c.rbd_pool, c.image);
  c.state = rbdb::RecordState::kDeleted;
  RETURN_IF_ERROR(CreateTaggedImage(h.io.get(), c.image, c.id));
  {
    rbd_image_t img;
    int r = rbd_open(h.io.get(), c.image.c_str(), &img, nullptr);
    if (r < 0) return rbdb::RadosError(r, "rbd_open");
    char id[64] = {};
    rbd_get_id(img, id, sizeof id);
    rbd_close(img);
    c.image_id = id;
  }
  RETURN_IF_ERROR(journal.Update({{rbdb::VolumeKey(c.id), rbdb::ToJson(c)}}));
  deleted_image_ = c.image;

  // (d) A snapshot deletion committed in the journal; the RBD snapshot is still there.
  rbdb::SnapshotRecord d = b;
  d.name = "snap-deleting";
  d.snap = rbdb::NewSnapName();
  d.id = rbdb::MakeSnapshotId(d.rbd_pool, d.image, d.snap);
  d.state = rbdb::RecordState::kDeleting;
  RETURN_IF_ERROR(CreateSnap(h.io.get(), d.image_id, d.snap));
  RETURN_IF_ERROR(journal.Update({{rbdb::SnapshotKey(d.id), rbdb::ToJson(d)}}));
  deleting_snap_ = d.snap;
  return Status();
}

bool RbdPoolFixture::LeftoversGone() {
  auto h = Connect(env_);
  if (!h.ok()) return false;
  rbdb::Journal journal(&h->io, JournalObject(instance_));
  // The sweep runs in the background after open: give it a little while.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    bool gone = !ImageExists(h->io.get(), crashed_image_) &&
                !ImageExists(h->io.get(), deleted_image_) &&
                !SnapExists(h->io.get(), crashed_snap_image_id_, crashed_snap_) &&
                !SnapExists(h->io.get(), crashed_snap_image_id_, deleting_snap_);
    auto vols = journal.List("v/");
    auto snaps = journal.List("s/");
    gone = gone && vols.ok() && vols->size() == 1 && snaps.ok() && snaps->size() == 1;
    if (gone) return true;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "leftovers still there: volume records "
                    << (vols.ok() ? vols->size() : 0) << ", snapshot records "
                    << (snaps.ok() ? snaps->size() : 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

PoolBackend RbdBackend() {
  return PoolBackend{"Rbd", [] { return std::make_unique<RbdPoolFixture>(); }};
}

}  // namespace vdisk::pooltest
