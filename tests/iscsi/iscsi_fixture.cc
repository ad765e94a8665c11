#include "tests/iscsi/iscsi_fixture.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "blockdev/iscsi/journal.h"
#include "blockdev/iscsi/target_manager.h"
#include "common/fs.h"

namespace vdisk::pooltest {

namespace ib = vdisk::blockdev::iscsi;

namespace {
constexpr char kCrashedVolume[] = "pvc-crashed-0123456789ab";
constexpr char kCrashedSnapshot[] = "snap-crashed-0123456789ab";
constexpr char kStrayVolume[] = "stray-0123456789ab";
constexpr char kOrphanTarget[] = "orphan-0123456789ab";

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

blockdev::PoolConfig IscsiPoolFixture::config() const {
  return vdisk::testing::IscsiPoolConfig(env_, "iscsi", token_, extra_);
}

Status IscsiPoolFixture::SetUp() {
  ASSIGN_OR_RETURN(env_, vdisk::testing::LoadTgtEnv());
  token_ = vdisk::testing::UniqueToken();
  root_ = env_.backing + "/" + token_;
  return Status();
}

StatusOr<std::shared_ptr<blockdev::Pool>> IscsiPoolFixture::Open() { return vdisk::testing::OpenTestPool(config()); }

void IscsiPoolFixture::TearDown() {
  if (auto pool = Open(); pool.ok()) {
    if (auto snaps = (*pool)->list_snapshots(); snaps.ok())
      for (const auto& s : *snaps) (void)(*pool)->delete_snapshot(s.id);
    if (auto vols = (*pool)->list_volumes(); vols.ok())
      for (const auto& v : *vols) (void)(*pool)->delete_volume(v.id);
  }
  auto mgr = ib::MakeTgtadmManager(ib::TargetHost({"/bin/sh", "-c"}), env_.control);
  if (auto targets = mgr->List(); targets.ok())
    for (const auto& t : *targets)
      if (t.iqn.starts_with(IqnPrefix() + ":")) (void)mgr->DeleteTarget(t.tid);
  (void)fs::RemoveAll(root_);
}

Status IscsiPoolFixture::MakeCrashLeftovers() {
  ib::TargetHost host({"/bin/sh", "-c"});
  ib::Journal journal(&host, root_ + "/vdisk-pool.json");
  ASSIGN_OR_RETURN(ib::JournalState state, journal.Load());
  ib::VolumeRecord v;
  v.id = kCrashedVolume;
  v.name = "pvc-crashed";
  v.size_bytes = 4 << 20;
  v.state = ib::RecordState::kCreating;
  state.volumes[v.id] = v;
  ib::SnapshotRecord s;
  s.id = kCrashedSnapshot;
  s.name = "snap-crashed";
  s.state = ib::RecordState::kCreating;
  state.snapshots[s.id] = s;
  RETURN_IF_ERROR(journal.Store(state));
  RETURN_IF_ERROR(host.CreateFile(root_ + "/volumes/" + kCrashedVolume + ".img", 4 << 20, false));
  RETURN_IF_ERROR(host.CreateFile(root_ + "/snapshots/" + kCrashedSnapshot + ".img", 4 << 20, false));
  RETURN_IF_ERROR(host.CreateFile(root_ + "/volumes/" + std::string(kStrayVolume) + ".img", 4 << 20, false));
  auto mgr = ib::MakeTgtadmManager(host, env_.control);
  for (const char* id : {kCrashedVolume, kOrphanTarget}) {
    ASSIGN_OR_RETURN(int tid, mgr->CreateTarget(IqnPrefix() + ":" + id));
    ib::LunSpec lun;
    lun.backing = root_ + "/volumes/" + kCrashedVolume + ".img";
    RETURN_IF_ERROR(mgr->AddLun(tid, lun));
  }
  return Status();
}

bool IscsiPoolFixture::LeftoversGone() {
  bool gone = !Exists(root_ + "/volumes/" + std::string(kCrashedVolume) + ".img") &&
              !Exists(root_ + "/snapshots/" + std::string(kCrashedSnapshot) + ".img") &&
              !Exists(root_ + "/volumes/" + std::string(kStrayVolume) + ".img");
  auto mgr = ib::MakeTgtadmManager(ib::TargetHost({"/bin/sh", "-c"}), env_.control);
  auto targets = mgr->List();
  if (!targets.ok()) return false;
  for (const auto& t : *targets)
    if (t.iqn == IqnPrefix() + ":" + kCrashedVolume || t.iqn == IqnPrefix() + ":" + kOrphanTarget) gone = false;
  return gone;
}

PoolBackend IscsiBackend(blockdev::Params extra) {
  return PoolBackend{"iscsi", [extra] { return std::make_unique<IscsiPoolFixture>(extra); }};
}

}  // namespace vdisk::pooltest
