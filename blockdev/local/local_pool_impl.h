// Internal: the LocalPool class behind OpenLocalPool(). Split over local_pool.cc (open, sweep,
// volumes), local_snapshots.cc (snapshots, change maps), local_names.cc (lookups by name through
// the name index) and local_node.cc (attach/detach).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "blockdev/local/file_lock.h"
#include "blockdev/local/image_file.h"
#include "blockdev/local/layout.h"
#include "blockdev/local/local_pool.h"
#include "blockdev/local/metadata.h"
#include "blockdev/local/name_index.h"
#include "blockdev/local/staged_build.h"
#include "blockdev/pool.h"

namespace vdisk::blockdev::local {

class LocalPool final : public Pool {
 public:
  LocalPool(LocalPoolOptions options, std::string root, bool reflink);

  // Creates the layout if needed and sweeps stale leftovers (under the pool lock).
  Status Init();

  std::string name() const override { return options_.name; }
  std::string kind() const override { return "local"; }
  Capabilities capabilities() const override;
  Status validate_params(const Params& params) const override;
  StatusOr<Capacity> capacity(const Params& params) override;
  Status health() override;  // local_health.cc

  StatusOr<Volume> create_volume(const VolumeRequest& req) override;
  Status complete_volume(const std::string& id) override;
  Status delete_volume(const std::string& id) override;
  StatusOr<Volume> get_volume(const std::string& id) override;
  StatusOr<std::optional<Volume>> find_volume_by_name(const std::string& name) override;
  StatusOr<std::vector<Volume>> list_volumes() override;
  StatusOr<uint64_t> expand_volume(const std::string& id, uint64_t new_size_bytes) override;
  Status set_mutable_params(const std::string& id, const Params& params) override;

  StatusOr<Snapshot> create_snapshot(const std::string& volume_id,
                                     const std::string& name) override;
  Status delete_snapshot(const std::string& id) override;
  StatusOr<Snapshot> get_snapshot(const std::string& id) override;
  StatusOr<std::optional<Snapshot>> find_snapshot_by_name(const std::string& name) override;
  StatusOr<std::vector<Snapshot>> list_snapshots() override;

  StatusOr<std::unique_ptr<Device>> open_volume(const std::string& id, bool read_only) override;
  StatusOr<std::unique_ptr<Device>> open_snapshot(const std::string& id) override;
  StatusOr<ExtentList> changed_extents(const std::string& base_id, const std::string& id) override;

  StatusOr<Attachment> attach(const std::string& id, bool read_only,
                              const Params& secrets) override;
  Status detach(const std::string& id, const Attachment& attachment) override;
  Status node_expand(const std::string& id, const Attachment& attachment) override;

 private:
  StatusOr<FileLock> LockPool() const { return FileLock::Acquire(layout_.lock_file()); }
  // Under the pool lock: ABORTED if a live build of kind `kind` ('v' or 's') uses `name`;
  // removes stale builds it meets.
  Status CheckNoLiveBuild(char kind, const std::string& name) const;
  // Under the pool lock: a fresh id not used by any record, data directory or build.
  std::string FreshId(char kind, const std::string& name) const;
  // Moves a finished build to its final directory and writes its record (the commit point).
  Status CommitVolume(StagedBuild& build, const Volume& v) const;
  Status CommitSnapshot(StagedBuild& build, const Snapshot& s) const;
  // Moves `dir` aside into staging and removes it (after its record is gone).
  void RemoveData(const std::string& dir, const std::string& id) const;

  Status Sweep() const;
  // OUT_OF_RANGE for a size beyond the largest file the root's file system holds.
  Status CheckVolumeSize(uint64_t size_bytes) const;
  Volume Decorate(Volume v, const std::optional<FsSpace>& space) const;

  // --- names (local_names.cc) ---
  // What the name index needs to know of one kind of object ('v' volumes, 's' snapshots).
  struct NamedKind {
    const char* what;
    const NameIndex* index;
    std::function<StatusOr<std::vector<std::string>>()> ids;
    // The record's name and creation time; NOT_FOUND, or DATA_LOSS / an I/O error if unreadable.
    std::function<StatusOr<std::pair<std::string, int64_t>>(const std::string& id)> read;
    std::set<std::string>* unnamed;  // guarded by names_mu_
  };
  NamedKind Kind(char kind) const;
  // The id of the committed object called `name`, or nullopt if the name is free. DATA_LOSS
  // when that cannot be told: the record the index names is unreadable, or the pool holds
  // unreadable records whose names are unknown (never "free" then: a retry would make a
  // second object with the same name). No lock needed.
  StatusOr<std::optional<std::string>> ResolveName(char kind, const std::string& name) const;
  // Under the pool lock, at open: makes the index agree with the records (entries added for
  // records without one, removed where their record is gone) and notes unreadable records no
  // entry names.
  Status CheckNameIndex(char kind) const;
  StatusOr<std::optional<Volume>> FindVolumeByNameLocked(const std::string& name) const;
  StatusOr<std::optional<Snapshot>> FindSnapshotByNameLocked(const std::string& name) const;
  // Sparse copy of one image file into a new one (the snapshot path without reflink).
  Status CopyImage(Device& from, const std::string& dst, uint64_t size) const;

  LocalPoolOptions options_;
  Layout layout_;
  dev_t root_dev_ = 0;  // the root's file system when the pool was opened (health())
  MetaStore meta_;
  NameIndex volume_names_;
  NameIndex snapshot_names_;
  mutable std::mutex names_mu_;
  mutable std::set<std::string> unnamed_volumes_, unnamed_snapshots_;
  bool reflink_;
  uint64_t max_volume_bytes_ = 0;  // the largest file the root's file system holds (Init)
};

uint64_t RoundUpToGranularity(uint64_t bytes);

}  // namespace vdisk::blockdev::local
