// Internal to the iSCSI backend: the IscsiPool class (iscsi_pool.h), split over
// iscsi_pool.cc (open, recovery, exports, capabilities), iscsi_volumes.cc, iscsi_snapshots.cc
// and iscsi_node.cc (attach, ControllerPublish). Also used by the tests of this backend.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "blockdev/iscsi/iscsi_device.h"
#include "blockdev/iscsi/iscsi_options.h"
#include "blockdev/iscsi/journal.h"
#include "blockdev/iscsi/target_manager.h"
#include "blockdev/pool.h"

namespace vdisk::blockdev::iscsi {

struct IscsiLease;

inline constexpr char kBlockProduct[] = "vdisk-block";
inline constexpr char kFilesystemProduct[] = "vdisk-filesystem";
inline constexpr char kSnapshotProduct[] = "vdisk-snapshot";

// What every IscsiPool object of one pool in this process shares. The CSI layer opens one Pool
// per set of secrets (PoolSet), and they must see one journal state, one set of leases, one
// recovery at start and one export check, or one would overwrite the others' changes.
struct IscsiPoolCore {
  std::mutex init_mu;      // first Init() recovers; the others only attach
  bool initialized = false;
  bool keeper_started = false;
  std::mutex mu;           // state, leases
  JournalState state;
  std::map<std::string, std::weak_ptr<IscsiLease>> leases;  // by target IQN
  std::mutex export_mu;    // target changes on tgtd
};

class IscsiPool final : public Pool, public std::enable_shared_from_this<IscsiPool> {
 public:
  static StatusOr<std::shared_ptr<IscsiPool>> Open(const IscsiPoolOptions& options);
  ~IscsiPool() override;

  std::string name() const override { return o_.name; }
  std::string kind() const override { return "iscsi"; }
  Capabilities capabilities() const override;
  Status validate_params(const Params& params) const override { return ValidateIscsiParams(params); }
  StatusOr<Capacity> capacity(const Params& params) override;
  Status health() override;  // iscsi_health.cc

  StatusOr<Volume> create_volume(const VolumeRequest& req) override;
  Status complete_volume(const std::string& id) override;
  Status delete_volume(const std::string& id) override;
  StatusOr<Volume> get_volume(const std::string& id) override;
  StatusOr<std::optional<Volume>> find_volume_by_name(const std::string& name) override;
  StatusOr<std::vector<Volume>> list_volumes() override;
  StatusOr<uint64_t> expand_volume(const std::string& id, uint64_t new_size_bytes) override;

  StatusOr<Snapshot> create_snapshot(const std::string& volume_id, const std::string& name) override;
  Status delete_snapshot(const std::string& id) override;
  StatusOr<Snapshot> get_snapshot(const std::string& id) override;
  StatusOr<std::optional<Snapshot>> find_snapshot_by_name(const std::string& name) override;
  StatusOr<std::vector<Snapshot>> list_snapshots() override;

  StatusOr<std::unique_ptr<Device>> open_volume(const std::string& id, bool read_only) override;
  StatusOr<std::unique_ptr<Device>> open_snapshot(const std::string& id) override;
  StatusOr<ExtentList> changed_extents(const std::string& base_id, const std::string& id) override;

  StatusOr<Attachment> attach(const std::string& id, bool read_only, const Params& secrets) override;
  Status detach(const std::string& id, const Attachment& attachment) override;
  Status node_expand(const std::string& id, const Attachment& attachment) override;
  StatusOr<Params> publish(const std::string& id, const std::string& node_id, bool read_only) override;
  Status unpublish(const std::string& id, const std::string& node_id) override;

  // Makes every ready or pending volume exported as its record says, and removes targets of
  // this pool that no volume or open snapshot owns (after a tgtd restart, or a crash).
  Status EnsureExports();

  const IscsiPoolOptions& options() const { return o_; }
  const std::string& initiator() const { return initiator_; }
  std::string VolumeIqn(const std::string& id) const { return o_.iqn_prefix + ":" + id; }
  std::string SnapshotIqn(const std::string& id) const { return o_.iqn_prefix + ":snapshot." + id; }
  std::string VolumePath(const std::string& id) const { return o_.backing_dir + "/volumes/" + id + ".img"; }
  std::string SnapshotPath(const std::string& id) const { return o_.backing_dir + "/snapshots/" + id + ".img"; }
  std::string JournalPath() const { return o_.backing_dir + "/vdisk-pool.json"; }
  bool reflink() const { return reflink_; }

  // Ids: lower-case [a-z0-9-], <name-derived prefix>-<12 hex>; anything else is INVALID_ARGUMENT.
  static Status ValidateId(const std::string& id, const char* what);

 private:
  using Lease = IscsiLease;
  friend struct IscsiLease;
  IscsiPool(IscsiPoolOptions o, std::shared_ptr<IscsiPoolCore> core);
  Status Init();
  Status Recover();
  Status RequireManager(const char* what) const;
  // Writes `next` to the journal and makes it the state. Caller holds mu_.
  Status CommitLocked(JournalState next);
  std::string NewId(const std::string& name) const;
  SessionOptions LoginOptions(const Chap& chap) const;
  LunAddress Address(const std::string& iqn) const { return {o_.portal, iqn, 1}; }
  Volume ToVolume(const VolumeRecord& r) const;
  StatusOr<VolumeRecord> VisibleVolume(const std::string& id) const;
  StatusOr<SnapshotRecord> VisibleSnapshot(const std::string& id) const;

  // Exports (iscsi_pool.cc). Callers hold export_mu_.
  Status ExportLocked(const std::vector<TargetInfo>& targets, const std::string& iqn, const LunSpec& lun,
                      const std::set<std::string>& initiators, const Chap& chap);
  Status UnexportLocked(const std::string& iqn);
  // LUN 1 of a target: its backing file, a serial stable across re-exports, and the product
  // name telling a node what the LUN is ("vdisk-block", "vdisk-filesystem", "vdisk-snapshot").
  static LunSpec Lun(const std::string& iqn, const std::string& backing, bool read_only, const std::string& product);
  LunSpec VolumeLun(const VolumeRecord& r) const;
  std::set<std::string> VolumeInitiators(const VolumeRecord& r) const;
  StatusOr<std::shared_ptr<Lease>> VolumeLease(const std::string& id);
  StatusOr<std::shared_ptr<Lease>> SnapshotLease(const SnapshotRecord& s);
  void ReleaseLease(Lease* lease);
  Status ReexportVolume(const std::string& id);  // after a LUN change (expand) or ACL change
  void KeeperLoop();

  // Fills the new volume `id` from `source` by EXTENDED COPY (xcopy: on, no reflink).
  Status XcopyInto(const std::string& id, const VolumeSource& source);

  // Node side without a target host.
  StatusOr<Volume> ProbeVolume(const std::string& id);

  IscsiPoolOptions o_;
  std::string initiator_;
  std::unique_ptr<TargetHost> host_;
  std::unique_ptr<TargetManager> tgt_;
  std::unique_ptr<Journal> journal_;
  bool reflink_ = false;

  std::shared_ptr<IscsiPoolCore> core_;
  std::mutex& mu_;  // the core's: state_, leases_
  JournalState& state_;
  std::map<std::string, std::weak_ptr<Lease>>& leases_;
  std::mutex& export_mu_;

  std::mutex keeper_mu_;
  std::condition_variable keeper_cv_;
  bool stopping_ = false;
  std::thread keeper_;
};

}  // namespace vdisk::blockdev::iscsi
