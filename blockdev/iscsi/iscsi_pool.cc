#include "blockdev/iscsi/iscsi_pool.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "blockdev/iscsi/iscsi_pool_impl.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::iscsi {

// What a Device keeps alive: this controller's admission to a volume's target (revoked when the
// last Device closes, unless the node is also published), or a snapshot's read-only export
// (removed when the last Device closes).
struct IscsiLease {
  std::shared_ptr<IscsiPool> pool;
  std::string iqn;
  std::string volume_id;  // empty for a snapshot export
  ~IscsiLease() { pool->ReleaseLease(this); }
};

namespace {
// The shared part of every pool object of one pool (by name, target host directory, IQN prefix).
std::shared_ptr<IscsiPoolCore> CoreFor(const IscsiPoolOptions& o) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<IscsiPoolCore>> cores;
  const std::string key = absl::StrCat(o.name, "\n", o.backing_dir, "\n", o.iqn_prefix, "\n", o.portal);
  std::lock_guard lock(mu);
  if (auto c = cores[key].lock()) return c;
  auto c = std::make_shared<IscsiPoolCore>();
  cores[key] = c;
  return c;
}
}  // namespace

StatusOr<std::shared_ptr<Pool>> OpenIscsiPool(const IscsiPoolOptions& options) {
  ASSIGN_OR_RETURN(auto pool, IscsiPool::Open(options));
  return std::shared_ptr<Pool>(std::move(pool));
}

IscsiPool::IscsiPool(IscsiPoolOptions o, std::shared_ptr<IscsiPoolCore> core)
    : o_(std::move(o)),
      core_(std::move(core)),
      mu_(core_->mu),
      state_(core_->state),
      leases_(core_->leases),
      export_mu_(core_->export_mu) {
  initiator_ = NodeInitiator(o_.initiator_prefix, o_.node_id);
}

StatusOr<std::shared_ptr<IscsiPool>> IscsiPool::Open(const IscsiPoolOptions& options) {
  std::shared_ptr<IscsiPool> pool(new IscsiPool(options, CoreFor(options)));
  RETURN_IF_ERROR(pool->Init());
  return pool;
}

IscsiPool::~IscsiPool() {
  {
    std::lock_guard lock(keeper_mu_);
    stopping_ = true;
  }
  keeper_cv_.notify_all();
  if (keeper_.joinable()) {
    keeper_.join();
    std::lock_guard init(core_->init_mu);
    core_->keeper_started = false;
  }
}

Status IscsiPool::Init() {
  if (!o_.manages_targets()) return Status();
  host_ = std::make_unique<TargetHost>(o_.target_host);
  tgt_ = MakeTgtadmManager(*host_, o_.tgt_control);
  journal_ = std::make_unique<Journal>(host_.get(), JournalPath());
  auto dirs = host_->Run({"mkdir", "-p", "--", o_.backing_dir + "/volumes", o_.backing_dir + "/snapshots"});
  if (!dirs.ok()) return Annotate(dirs.status(), absl::StrCat("iscsi pool '", o_.name, "': target host"));
  if (o_.reflink == Toggle::kOff) {
    reflink_ = false;
  } else {
    ASSIGN_OR_RETURN(reflink_, host_->ProbeReflink(o_.backing_dir));
    if (!reflink_ && o_.reflink == Toggle::kOn)
      return absl::FailedPreconditionError(absl::StrCat("iscsi pool '", o_.name, "': reflink=on but ", o_.backing_dir,
                                                        " cannot reflink (XFS with reflink=1 or btrfs needed)"));
  }
  std::lock_guard init(core_->init_mu);
  if (!core_->initialized) {
    // The first object of this pool in the process: load, recover, re-export.
    ASSIGN_OR_RETURN(JournalState loaded, journal_->Load());
    {
      std::lock_guard lock(mu_);
      state_ = std::move(loaded);
    }
    RETURN_IF_ERROR(Recover());
    if (Status s = EnsureExports(); !s.ok())
      return Annotate(s, absl::StrCat("iscsi pool '", o_.name, "': exporting volumes (is tgtd -C ", o_.tgt_control,
                                      " running?)"));
    core_->initialized = true;
    spdlog::info("iscsi pool {}: {} volume(s), {} snapshot(s) on {} (reflink {}), portal {}, initiator {}", o_.name,
                 state_.volumes.size(), state_.snapshots.size(), o_.backing_dir, reflink_ ? "yes" : "no", o_.portal,
                 initiator_);
  }
  if (o_.export_check_s > 0 && !core_->keeper_started) {
    core_->keeper_started = true;  // one export check per pool, run by the first object
    keeper_ = std::thread([this] { KeeperLoop(); });
  }
  return Status();
}

// Undoes what interrupted calls left: records in creating / deleting state with their files and
// targets, and backing files no record owns.
Status IscsiPool::Recover() {
  JournalState next = state_;
  std::vector<std::string> remove_files, remove_targets;
  for (auto it = next.volumes.begin(); it != next.volumes.end();) {
    if (it->second.state == RecordState::kCreating || it->second.state == RecordState::kDeleting) {
      spdlog::warn("iscsi pool {}: removing volume {} ('{}') left {} by an interrupted call", o_.name, it->first,
                   it->second.name, it->second.state == RecordState::kCreating ? "half-made" : "half-deleted");
      remove_files.push_back(VolumePath(it->first));
      remove_targets.push_back(VolumeIqn(it->first));
      it = next.volumes.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = next.snapshots.begin(); it != next.snapshots.end();) {
    if (it->second.state != RecordState::kReady) {
      spdlog::warn("iscsi pool {}: removing snapshot {} left by an interrupted call", o_.name, it->first);
      remove_files.push_back(SnapshotPath(it->first));
      it = next.snapshots.erase(it);
    } else {
      ++it;
    }
  }
  ASSIGN_OR_RETURN(auto vol_files, host_->List(o_.backing_dir + "/volumes", ".img"));
  for (const auto& id : vol_files)
    if (!next.volumes.count(id)) remove_files.push_back(VolumePath(id));
  ASSIGN_OR_RETURN(auto snap_files, host_->List(o_.backing_dir + "/snapshots", ".img"));
  for (const auto& id : snap_files)
    if (!next.snapshots.count(id)) remove_files.push_back(SnapshotPath(id));
  if (!remove_targets.empty()) {
    std::lock_guard lock(export_mu_);
    for (const auto& iqn : remove_targets) RETURN_IF_ERROR(UnexportLocked(iqn));
  }
  for (const auto& f : remove_files) RETURN_IF_ERROR(host_->Remove(f));
  std::lock_guard lock(mu_);
  if (next.volumes.size() != state_.volumes.size() || next.snapshots.size() != state_.snapshots.size())
    RETURN_IF_ERROR(CommitLocked(std::move(next)));
  return Status();
}

Status IscsiPool::RequireManager(const char* what) const {
  if (o_.manages_targets()) return Status();
  return absl::FailedPreconditionError(absl::StrCat("iscsi pool '", o_.name, "' has target_host: none here; ", what,
                                                    " is done by the controller, which runs with the target host"));
}

Status IscsiPool::CommitLocked(JournalState next) {
  RETURN_IF_ERROR(journal_->Store(next));
  state_ = std::move(next);
  return Status();
}

Status IscsiPool::ValidateId(const std::string& id, const char* what) {
  if (id.empty() || id.size() > 64 || id.front() == '-' ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat("'", id, "' is not an iscsi ", what, " id"));
  return Status();
}

std::string IscsiPool::NewId(const std::string& name) const {
  std::string prefix;
  for (char c : name) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) prefix += l;
    else if (!prefix.empty() && prefix.back() != '-') prefix += '-';
    if (prefix.size() >= 24) break;
  }
  while (!prefix.empty() && prefix.back() == '-') prefix.pop_back();
  if (prefix.empty()) prefix = "vol";
  unsigned char rnd[6];
  RAND_bytes(rnd, sizeof rnd);
  std::string hex;
  for (unsigned char b : rnd) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  return absl::StrCat(prefix, "-", hex);
}

SessionOptions IscsiPool::LoginOptions(const Chap& chap) const {
  SessionOptions s;
  s.initiator = initiator_;
  s.chap = chap;
  s.login_timeout_s = o_.login_timeout_s;
  s.command_timeout_s = o_.command_timeout_s;
  s.reconnect_timeout_s = o_.reconnect_timeout_s;
  return s;
}

Capabilities IscsiPool::capabilities() const {
  Capabilities c;
  // A Filesystem volume is the same LUN, served to VMs by the node's vhost-user export (the
  // socket is published in a directory); the kernel path attaches Block volumes only.
  c.modes = {VolumeMode::kBlock, VolumeMode::kFilesystem};
  c.block_access_modes = {AccessMode::kSingleNodeWriter,      AccessMode::kSingleNodeReaderOnly,
                          AccessMode::kMultiNodeReaderOnly,   AccessMode::kMultiNodeSingleWriter,
                          AccessMode::kMultiNodeMultiWriter,  AccessMode::kSingleNodeSingleWriter,
                          AccessMode::kSingleNodeMultiWriter};
  c.filesystem_access_modes = c.block_access_modes;
  c.attach_modes = {VolumeMode::kBlock};
  c.attach_note =
      "iscsi pools serve Filesystem volumes only through attach: vhost-user (a kernel attachment would need an "
      "iSCSI initiator and a file system on the node); set the StorageClass parameter attach: vhost-user, or use "
      "volumeMode: Block";
  c.size_granularity = 1 << 20;
  c.snapshots = true;
  c.clone_from_snapshot = c.clone_from_volume = reflink_ || o_.xcopy;
  c.changed_extents = false;
  c.online_expand = true;
  c.fast_clone = reflink_;
  c.controller_publish = !o_.open_acl;
  return c;
}

StatusOr<Capacity> IscsiPool::capacity(const Params& params) {
  RETURN_IF_ERROR(ValidateIscsiParams(params));
  RETURN_IF_ERROR(RequireManager("GetCapacity"));
  ASSIGN_OR_RETURN(auto space, host_->Space(o_.backing_dir));
  Capacity c;
  c.total_bytes = space.total_bytes;
  c.available_bytes = space.available_bytes;
  return c;
}

Volume IscsiPool::ToVolume(const VolumeRecord& r) const {
  Volume v;
  v.id = r.id;
  v.name = r.name;
  v.size_bytes = r.size_bytes;
  v.mode = r.mode;
  v.access_modes = r.access_modes;
  v.params = r.params;
  v.source = r.source;
  v.pending = r.state == RecordState::kPending;
  v.created_unix_ns = r.created_unix_ns;
  v.context = {{"iscsi.portal", o_.portal}, {"iscsi.iqn", VolumeIqn(r.id)}, {"iscsi.lun", "1"}};
  return v;
}

StatusOr<VolumeRecord> IscsiPool::VisibleVolume(const std::string& id) const {
  RETURN_IF_ERROR(ValidateId(id, "volume"));
  std::lock_guard lock(mu_);
  auto it = state_.volumes.find(id);
  if (it == state_.volumes.end() ||
      (it->second.state != RecordState::kReady && it->second.state != RecordState::kPending))
    return absl::NotFoundError(absl::StrCat("iscsi pool '", o_.name, "': no volume ", id));
  return it->second;
}

StatusOr<SnapshotRecord> IscsiPool::VisibleSnapshot(const std::string& id) const {
  RETURN_IF_ERROR(ValidateId(id, "snapshot"));
  std::lock_guard lock(mu_);
  auto it = state_.snapshots.find(id);
  if (it == state_.snapshots.end() || it->second.state != RecordState::kReady)
    return absl::NotFoundError(absl::StrCat("iscsi pool '", o_.name, "': no snapshot ", id));
  return it->second;
}

// ------------------------------------------------------------------------------------------------
// Exports

LunSpec IscsiPool::Lun(const std::string& iqn, const std::string& backing, bool read_only, const std::string& product) {
  LunSpec lun;
  lun.backing = backing;
  lun.read_only = read_only;
  lun.serial = absl::StrFormat("vd%016x", std::hash<std::string>{}(iqn));  // stable across re-exports
  lun.product = product;
  return lun;
}

LunSpec IscsiPool::VolumeLun(const VolumeRecord& r) const {
  return Lun(VolumeIqn(r.id), VolumePath(r.id), false,
             r.mode == VolumeMode::kFilesystem ? kFilesystemProduct : kBlockProduct);
}

std::set<std::string> IscsiPool::VolumeInitiators(const VolumeRecord& r) const {
  if (o_.open_acl) return {"ALL"};
  std::set<std::string> out = r.published;
  std::lock_guard lock(mu_);
  auto it = leases_.find(VolumeIqn(r.id));
  if (it != leases_.end() && !it->second.expired()) out.insert(initiator_);
  return out;
}

Status IscsiPool::ExportLocked(const std::vector<TargetInfo>& targets, const std::string& iqn, const LunSpec& lun,
                               const std::set<std::string>& initiators, const Chap& chap) {
  const std::string& backing = lun.backing;
  const TargetInfo* have = nullptr;
  for (const auto& t : targets)
    if (t.iqn == iqn) have = &t;
  if (have && (have->luns.size() != 1 || have->luns[0].first != 1 || have->luns[0].second != backing)) {
    RETURN_IF_ERROR(tgt_->DeleteTarget(have->tid));  // wrong LUN: make it again
    have = nullptr;
  }
  int tid = 0;
  if (have) {
    tid = have->tid;
  } else {
    ASSIGN_OR_RETURN(tid, tgt_->CreateTarget(iqn));
    Status s = tgt_->AddLun(tid, lun);
    if (!s.ok()) {
      (void)tgt_->DeleteTarget(tid);
      return s;
    }
  }
  for (const auto& i : initiators) {
    if (have && std::find(have->acl.begin(), have->acl.end(), i) != have->acl.end()) continue;
    RETURN_IF_ERROR(tgt_->Allow(tid, i));
  }
  if (have) {
    for (const auto& a : have->acl)
      if (!initiators.count(a)) RETURN_IF_ERROR(tgt_->Disallow(tid, a));
  }
  if (chap.enabled() && !(have && std::find(have->accounts.begin(), have->accounts.end(), chap.user) != have->accounts.end()))
    RETURN_IF_ERROR(tgt_->RequireChap(tid, chap));
  return Status();
}

Status IscsiPool::UnexportLocked(const std::string& iqn) {
  ASSIGN_OR_RETURN(auto targets, tgt_->List());
  for (const auto& t : targets)
    if (t.iqn == iqn) return tgt_->DeleteTarget(t.tid);
  return Status();
}

Status IscsiPool::EnsureExports() {
  if (!o_.manages_targets()) return Status();
  std::lock_guard ex(export_mu_);
  ASSIGN_OR_RETURN(auto targets, tgt_->List());
  std::vector<VolumeRecord> vols;
  std::set<std::string> owned;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, v] : state_.volumes) {
      owned.insert(VolumeIqn(id));
      if (v.state == RecordState::kReady || v.state == RecordState::kPending) vols.push_back(v);
    }
    for (const auto& [iqn, lease] : leases_)
      if (!lease.expired()) owned.insert(iqn);
  }
  for (const auto& v : vols)
    RETURN_IF_ERROR(ExportLocked(targets, VolumeIqn(v.id), VolumeLun(v), VolumeInitiators(v), v.chap));
  const std::string mine = o_.iqn_prefix + ":";
  for (const auto& t : targets) {
    if (!t.iqn.starts_with(mine) || owned.count(t.iqn)) continue;
    const std::string rest = t.iqn.substr(mine.size());
    if (!ValidateId(rest.starts_with("snapshot.") ? rest.substr(9) : rest, "target").ok()) continue;
    spdlog::info("iscsi pool {}: removing target {} that no volume owns", o_.name, t.iqn);
    RETURN_IF_ERROR(tgt_->DeleteTarget(t.tid));
  }
  return Status();
}

Status IscsiPool::ReexportVolume(const std::string& id) {
  VolumeRecord r;
  {
    std::lock_guard lock(mu_);
    auto it = state_.volumes.find(id);
    if (it == state_.volumes.end()) return Status();
    r = it->second;
  }
  std::lock_guard ex(export_mu_);
  ASSIGN_OR_RETURN(auto targets, tgt_->List());
  return ExportLocked(targets, VolumeIqn(id), VolumeLun(r), VolumeInitiators(r), r.chap);
}

StatusOr<std::shared_ptr<IscsiPool::Lease>> IscsiPool::VolumeLease(const std::string& id) {
  const std::string iqn = VolumeIqn(id);
  std::shared_ptr<Lease> lease;
  {
    std::lock_guard lock(mu_);
    if (auto it = leases_.find(iqn); it != leases_.end())
      if (auto alive = it->second.lock()) return alive;
    lease = std::shared_ptr<Lease>(new Lease{shared_from_this(), iqn, id});
    leases_[iqn] = lease;
  }
  Status s = ReexportVolume(id);  // admits this controller, re-creates a target tgtd lost
  if (!s.ok()) return s;
  return lease;
}

StatusOr<std::shared_ptr<IscsiPool::Lease>> IscsiPool::SnapshotLease(const SnapshotRecord& snap) {
  const std::string iqn = SnapshotIqn(snap.id);
  std::shared_ptr<Lease> lease;
  {
    std::lock_guard lock(mu_);
    if (auto it = leases_.find(iqn); it != leases_.end())
      if (auto alive = it->second.lock()) return alive;
    lease = std::shared_ptr<Lease>(new Lease{shared_from_this(), iqn, ""});
    leases_[iqn] = lease;
  }
  std::lock_guard ex(export_mu_);
  ASSIGN_OR_RETURN(auto targets, tgt_->List());
  std::set<std::string> who = o_.open_acl ? std::set<std::string>{"ALL"} : std::set<std::string>{initiator_};
  RETURN_IF_ERROR(
      ExportLocked(targets, iqn, Lun(iqn, SnapshotPath(snap.id), /*read_only=*/true, kSnapshotProduct), who, Chap{}));
  return lease;
}

void IscsiPool::ReleaseLease(Lease* lease) {
  {
    std::lock_guard lock(mu_);
    auto it = leases_.find(lease->iqn);
    if (it != leases_.end() && !it->second.expired()) return;  // a newer lease took over
    if (it != leases_.end()) leases_.erase(it);
  }
  Status s;
  if (lease->volume_id.empty()) {
    std::lock_guard ex(export_mu_);
    s = UnexportLocked(lease->iqn);
  } else if (!o_.open_acl) {
    s = ReexportVolume(lease->volume_id);  // drops this controller from the ACL unless published
  }
  if (!s.ok()) spdlog::warn("iscsi pool {}: releasing {}: {}", o_.name, lease->iqn, s.ToString());
}

void IscsiPool::KeeperLoop() {
  std::unique_lock lock(keeper_mu_);
  while (!keeper_cv_.wait_for(lock, std::chrono::seconds(o_.export_check_s), [this] { return stopping_; })) {
    lock.unlock();
    Status s = EnsureExports();
    if (!s.ok()) spdlog::warn("iscsi pool {}: export check: {}", o_.name, s.ToString());
    lock.lock();
  }
}

}  // namespace vdisk::blockdev::iscsi
