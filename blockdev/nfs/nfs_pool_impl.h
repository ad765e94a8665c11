// Internal to the NFS pool: the Pool implementation (nfs_pool.cc: open, sweep, capacity,
// builds; nfs_volumes.cc; nfs_snapshots.cc; nfs_node.cc).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "blockdev/nfs/local_export.h"
#include "blockdev/nfs/nfs_options.h"
#include "blockdev/nfs/nfs_session.h"
#include "blockdev/nfs/nfs_store.h"
#include "blockdev/pool.h"

namespace vdisk::blockdev::nfs {

inline constexpr uint64_t kSizeGranularity = 1ull << 20;

class NfsPool final : public Pool {
 public:
  NfsPool(NfsPoolOptions options, std::shared_ptr<Session> session);

  // Layout, local_path checks, sweep.
  Status Init();

  std::string name() const override { return options_.name; }
  std::string kind() const override { return "nfs"; }
  Capabilities capabilities() const override;
  Status validate_params(const Params& params) const override;
  StatusOr<Capacity> capacity(const Params& params) override;

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

  StatusOr<Attachment> attach(const std::string& id, bool read_only,
                              const Params& secrets) override;
  Status detach(const std::string& id, const Attachment& attachment) override;
  Status node_expand(const std::string& id, const Attachment& attachment) override;

 private:
  // Keeps a claim's heartbeat fresh while a long step runs (a thread touching it).
  class Heartbeat {
   public:
    Heartbeat(PoolStore& store, char kind, std::string name);
    ~Heartbeat();

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
  };

  // Claims `name` for a new object `id`. ABORTED while a live creator holds it; takes over
  // (removing its debris) a claim whose creator is gone; ALREADY_EXISTS when a committed
  // object has the name (`committed` tells whether a record exists for a claim's id).
  Status ClaimName(char kind, const std::string& name, const std::string& id,
                   const std::function<StatusOr<bool>(const std::string& id)>& committed);
  // Removes what a build of `id` left (staging, an uncommitted final directory).
  void RemoveBuildDebris(char kind, const std::string& id);
  // Moves `dir` into staging and removes it (after its record is gone). Best effort.
  void RemoveData(const std::string& dir, const std::string& id);
  // delete_volume ('v') / delete_snapshot ('s'): removes the record (the commit point of the
  // deletion), then releases the name and removes the data. OK if `id` does not exist.
  Status DeleteObject(char kind, const std::string& id);
  // Creates <dir>/disk.img of `size` bytes in a fresh directory: sparse, reflinked from
  // `reflink_from` (export path of an image), and/or with its blocks reserved.
  Status BuildImage(const std::string& dir, uint64_t size, const std::string& reflink_from,
                    bool preallocate);
  // Writes zeroes over the whole image (preallocation without local_path).
  Status ZeroFill(const std::string& image, uint64_t size);
  Status Sweep();
  Volume Decorate(Volume v, const std::optional<FsSpace>& space);
  std::optional<FsSpace> Space();
  StatusOr<std::unique_ptr<Device>> OpenImage(const std::string& path, bool read_only);

  NfsPoolOptions options_;
  std::shared_ptr<Session> session_;
  PoolStore store_;
  std::unique_ptr<LocalExport> local_;  // local_path, when configured and verified
  bool reflink_ = false;
  std::string owner_;                   // this instance, in claims
  std::mutex records_mu_;               // read-modify-write of records in this process
};

uint64_t RoundUpToGranularity(uint64_t bytes);

}  // namespace vdisk::blockdev::nfs
