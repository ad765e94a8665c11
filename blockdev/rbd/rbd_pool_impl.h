// Internal to the RBD pool: the Pool implementation (rbd_pool.cc: open, capacity, shared
// helpers, garbage collection; rbd_volumes.cc; rbd_snapshots.cc; rbd_node.cc).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "blockdev/rbd/cluster.h"
#include "blockdev/rbd/flattener.h"
#include "blockdev/rbd/image_locks.h"
#include "blockdev/rbd/journal.h"
#include "blockdev/rbd/owner_lease.h"
#include "blockdev/rbd/rbd_options.h"
#include "blockdev/rbd/records.h"
#include "common/periodic.h"
#include "common/step_log.h"

namespace vdisk::blockdev::rbd {

// Shared by rbd_snapshots.cc and rbd_groups.cc.
int NoProgress(uint64_t, uint64_t, void*);
Status ValidateSnapName(const std::string& name);
// Fills rec->created_unix_ns and rec->size_bytes from the image's snapshot rec->snap.
Status ReadSnapFacts(rbd_image_t img, SnapshotRecord* rec);

// Creators refresh updated_unix_ns at least this often during long steps (flatten); a creating
// record silent for options.abandon_after_s is abandoned.
inline constexpr int kHeartbeatSeconds = 15;

// A deleted volume's image that cannot be removed yet for a passing reason is retried this
// often, for at most kCollectRetryFor (past the OSDs' osd_client_watch_timeout, 30 s by
// default, after which a killed client's watch is gone); then it waits for the next start.
inline constexpr std::chrono::seconds kCollectRetryPeriod{2};
inline constexpr std::chrono::minutes kCollectRetryFor{10};

// The most objects an image may have: librbd refuses an object map past this many
// (cls::rbd::MAX_OBJECT_MAP_OBJECT_COUNT), and without one, removing an image costs one RADOS
// delete per object of its size (a 4 EiB image without object map does not go away in practice).
// With 4 MiB objects the largest volume is 976 TiB.
inline constexpr uint64_t kMaxImageObjects = 256000000;

class RbdPool final : public Pool, public std::enable_shared_from_this<RbdPool> {
 public:
  static StatusOr<std::shared_ptr<RbdPool>> Open(const RbdPoolOptions& options);
  ~RbdPool() override;

  std::string name() const override { return options_.name; }
  std::string kind() const override { return "rbd"; }
  Capabilities capabilities() const override;
  Status validate_params(const Params& params) const override;
  StatusOr<Capacity> capacity(const Params& params) override;
  Status health() override;  // rbd_health.cc

  StatusOr<Volume> create_volume(const VolumeRequest& req) override;
  Status complete_volume(const std::string& id) override;
  Status delete_volume(const std::string& id) override;
  StatusOr<Volume> get_volume(const std::string& id) override;
  StatusOr<std::optional<Volume>> find_volume_by_name(const std::string& name) override;
  StatusOr<std::vector<Volume>> list_volumes() override;
  StatusOr<uint64_t> expand_volume(const std::string& id, uint64_t new_size_bytes) override;

  StatusOr<Snapshot> create_snapshot(const std::string& volume_id,
                                     const std::string& name) override;
  Status delete_snapshot(const std::string& id) override;
  StatusOr<Snapshot> get_snapshot(const std::string& id) override;
  StatusOr<std::optional<Snapshot>> find_snapshot_by_name(const std::string& name) override;
  StatusOr<std::vector<Snapshot>> list_snapshots() override;

  StatusOr<std::unique_ptr<Device>> open_volume(const std::string& id, bool read_only) override;
  StatusOr<std::unique_ptr<Device>> open_snapshot(const std::string& id) override;
  StatusOr<ExtentList> changed_extents(const std::string& base_id, const std::string& id) override;

  // Write holds (rbd_holds.cc): RADOS watch/notify on "vdisk.hold.<image id>" next to each
  // image; writers are counted from the image header's watchers.
  StatusOr<std::shared_ptr<void>> watch_write_holds(const std::string& volume_id,
                                                    std::shared_ptr<WriteHoldSink> sink) override;
  StatusOr<WriteHold> hold_writes(const std::vector<std::string>& volume_ids,
                                  std::chrono::milliseconds lease) override;

  // Mutable parameters (rbd_volumes.cc): stored in the volume record and set as the image's
  // librbd QoS (conf_rbd_qos_* image metadata), which every librbd client of the image obeys.
  Status set_mutable_params(const std::string& id, const Params& params) override;

  StatusOr<Attachment> attach(const std::string& id, bool read_only,
                              const Params& secrets) override;
  Status detach(const std::string& id, const Attachment& attachment) override;
  Status node_expand(const std::string& id, const Attachment& attachment) override;

  // For tests and operators: waits until no background flatten / GC job is queued or running
  // and no deleted volume's image is waiting for a retry of its removal.
  void WaitForBackgroundWork();

 private:
  explicit RbdPool(RbdPoolOptions options);

  // --- shared helpers (rbd_pool.cc) ---
  // OUT_OF_RANGE for a size beyond what an image can hold (kMaxImageObjects objects).
  Status CheckImageSize(uint64_t size_bytes) const;
  StatusOr<const IoCtx*> Io(const std::string& rbd_pool);
  // Visible records (NOT_FOUND otherwise). *_any: any state; nullopt if absent.
  StatusOr<std::optional<VolumeRecord>> ReadVolumeAny(const std::string& id);
  StatusOr<std::optional<SnapshotRecord>> ReadSnapshotAny(const std::string& id);
  StatusOr<VolumeRecord> ReadVolume(const std::string& id);
  StatusOr<SnapshotRecord> ReadSnapshot(const std::string& id);
  // With the journal lock held. `written`: the record's JSON as stored (for Commit*).
  Status WriteVolume(VolumeRecord rec, const std::vector<std::string>& remove = {},
                     const std::map<std::string, std::string>& extra = {},
                     std::string* written = nullptr);
  Status WriteSnapshot(SnapshotRecord rec, const std::vector<std::string>& remove = {},
                       const std::map<std::string, std::string>& extra = {},
                       std::string* written = nullptr);
  // The commit of a record this instance created: one compare-and-set write op if the journal
  // still holds `written` (what this instance last stored), else under the journal lock.
  Status CommitVolume(const VolumeRecord& rec, const std::string& written);
  Status CommitSnapshot(const SnapshotRecord& rec, const std::string& written);
  Status CommitRecord(const std::string& key, const std::string& json, const std::string& written,
                      const std::function<Status()>& write_locked);
  // Removes the record under `key` (a finished deletion), taking the journal lock for it.
  Status ForgetRecord(const std::string& key);
  Volume ToVolume(const VolumeRecord& rec) const;
  static Snapshot ToSnapshot(const SnapshotRecord& rec);

  // Is a creating record held by a live creator (this process, or another one that is not
  // silent)? Such records make competing requests ABORTED.
  // Another process's creator is gone as soon as its owner lease (owner_lease.h) has run out.
  bool CreatorAlive(const std::string& id, const std::string& owner, int64_t updated_ns);
  // With the journal lock held: OK while `rec` is still this instance's creating record;
  // ABORTED if another process took it over (this one stalled past its owner lease).
  Status StillOwned(const VolumeRecord& rec);
  Status StillOwned(const SnapshotRecord& rec);
  void MarkBuilding(const std::string& id, bool on);

  // Number of ancestors of image `image_id` (at `snap`, or its head).
  StatusOr<int> ChainDepth(const std::string& rbd_pool, const std::string& image_id,
                           const std::string& snap);
  // The same, from an open image (at the snapshot or head it was opened / set at).
  StatusOr<int> ChainDepth(rbd_image_t image);
  // Flattens the image, logging progress; refreshes the creating record's heartbeat when
  // `heartbeat_id` is set. CANCELLED if `cancel` becomes true.
  Status Flatten(const std::string& rbd_pool, const std::string& image_id,
                 const std::string& volume_id, const std::atomic<bool>* cancel,
                 bool heartbeat);
  void ScheduleFlatten(const std::string& volume_id);
  void RunFlattenJob(const std::string& volume_id, const std::atomic<bool>& cancel);

  // Removes the image of a deleted (hidden) volume if nothing needs it any more (no user
  // snapshot, no trashed snapshot with children), then the same for its parent. An image that
  // is busy (a watcher: one of our own handles closing, or a killed process's watch that the
  // OSDs have not timed out yet) or a transient error is retried in the background
  // (kCollectRetry) until it goes; an image found already gone (a process killed inside its
  // removal) re-collects every deleted volume, since its parent is no longer known.
  void CollectVolume(const std::string& volume_id, int depth = 0);
  // Collects every deleted volume in the journal (background job, once per queue).
  void ScheduleCollectDeleted();
  void CollectDeleted();
  // Retry bookkeeping of CollectVolume: `volume_id` needs another attempt / is settled.
  void RetryCollect(const std::string& volume_id, const std::string& why);
  void SettledCollect(const std::string& volume_id);
  void RunCollectRetries();
  // With the journal lock held: if the creating record's creator is gone, takes the record
  // over (owner = this instance, marked building) so that exactly one caller cleans it up.
  bool ClaimIfAbandoned(VolumeRecord& rec);
  bool ClaimIfAbandoned(SnapshotRecord& rec);
  // Without the journal lock (they may be slow): removes what a failed or abandoned create left
  // behind (only an image tagged for the record), then its journal entries, and clears the
  // building mark. The record must be this instance's (its own create, or claimed).
  Status DiscardCreatingVolume(const VolumeRecord& rec);
  Status DiscardCreatingSnapshot(const SnapshotRecord& rec);

  // Startup sweep: re-queues flattens, finishes deletions, collects hidden images.
  void Sweep();

  // --- volumes (rbd_volumes.cc) ---
  // `steps`: the caller's step timings (debug log).
  // `written`: the record's JSON in the journal, updated when BuildVolume stores the record.
  Status BuildVolume(VolumeRecord& rec, const VolumeRequest& req, const VolumeOptions& vo,
                     bool* created_image, StepLog* steps, std::string* written);
  StatusOr<VolumeRecord> ResolveSource(const VolumeRequest& req, uint64_t* source_size,
                                       SnapshotRecord* snap);

  RbdPoolOptions options_;
  std::shared_ptr<Cluster> cluster_;
  std::string owner_;  // this instance's id in records
  uint64_t max_image_bytes_ = 0;  // kMaxImageObjects objects of the cluster's default object size
  std::mutex io_mu_;
  std::map<std::string, std::unique_ptr<IoCtx>> ios_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<OwnerLease> lease_;  // taken before this instance writes a creating record
  std::mutex building_mu_;
  std::set<std::string> building_;
  ImageLocks image_locks_;  // clean-up work per image (image_locks.h)
  // Deleted volumes whose image removal is retried, with the time of the first failure.
  std::mutex collect_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> collect_retry_;
  // Queues the retries (RunCollectRetries) every kCollectRetryPeriod; stopped before flattener_.
  std::unique_ptr<PeriodicThread> collect_timer_;
  // Last: stopped first on destruction (its jobs use everything above).
  std::unique_ptr<Flattener> flattener_;
};

}  // namespace vdisk::blockdev::rbd
