// RbdPool: opening, capabilities, capacity, record helpers, flatten and garbage collection.
#include "blockdev/rbd/rbd_pool.h"

#include <algorithm>
#include <functional>
#include <cstdlib>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "common/operation_metrics.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

namespace {

std::string RandomOwner() {
  std::mt19937_64 rng{std::random_device{}() ^ static_cast<uint64_t>(NowUnixNs())};
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
}

struct SnapInfo {
  uint64_t id;
  std::string name;
  uint64_t size;
};

StatusOr<std::vector<SnapInfo>> ListSnaps(rbd_image_t image) {
  int max = 16;
  for (;;) {
    std::vector<rbd_snap_info_t> snaps(max);
    int n = rbd_snap_list(image, snaps.data(), &max);
    if (n == -ERANGE) continue;
    if (n < 0) return RadosError(n, "rbd_snap_list");
    std::vector<SnapInfo> out;
    for (int i = 0; i < n; ++i) out.push_back({snaps[i].id, snaps[i].name, snaps[i].size});
    rbd_snap_list_end(snaps.data());
    return out;
  }
}

// The parent of an open image, as (pool, image name, image id); nullopt without a parent.
struct ParentRef {
  std::string pool, image, image_id;
  uint64_t snap_id = 0;
};
StatusOr<std::optional<ParentRef>> GetParent(rbd_image_t image) {
  rbd_linked_image_spec_t spec;
  rbd_snap_spec_t snap;
  int r = rbd_get_parent(image, &spec, &snap);
  if (r == -ENOENT) return std::optional<ParentRef>();
  if (r < 0) return RadosError(r, "rbd_get_parent");
  ParentRef p{spec.pool_name ? spec.pool_name : "", spec.image_name ? spec.image_name : "",
              spec.image_id ? spec.image_id : "", snap.id};
  rbd_linked_image_spec_cleanup(&spec);
  rbd_snap_spec_cleanup(&snap);
  return std::optional<ParentRef>(std::move(p));
}

}  // namespace

StatusOr<std::shared_ptr<Pool>> OpenRbdPool(const RbdPoolOptions& options) {
  ASSIGN_OR_RETURN(auto pool, RbdPool::Open(options));
  return std::shared_ptr<Pool>(std::move(pool));
}

RbdPool::RbdPool(RbdPoolOptions options) : options_(std::move(options)), owner_(RandomOwner()) {}

RbdPool::~RbdPool() {
  collect_timer_.reset();  // it queues jobs on the flattener
  flattener_.reset();
}

StatusOr<std::shared_ptr<RbdPool>> RbdPool::Open(const RbdPoolOptions& options) {
  std::shared_ptr<RbdPool> pool(new RbdPool(options));
  ASSIGN_OR_RETURN(pool->cluster_, Cluster::Connect(options.cluster));
  ASSIGN_OR_RETURN(const IoCtx* io, pool->Io(options.defaults.rbd_pool));
  std::string object = "vdisk.journal";
  if (!options.instance.empty()) absl::StrAppend(&object, ".", options.instance);
  pool->journal_ = std::make_unique<Journal>(io, object);
  pool->lease_ = std::make_unique<OwnerLease>(io, object, pool->owner_);
  // Fail now, not on the first request, if the user may not read the journal.
  auto probe = pool->journal_->Get("probe");
  if (!probe.ok())
    return Annotate(probe.status(), absl::StrCat("rbd pool '", options.name, "' (",
                                                 pool->cluster_->describe(), ")"));
  // Images get the cluster's default object size (rbd_default_order, 22 = 4 MiB unless the
  // conf says otherwise); that bounds the largest volume.
  char order_text[16] = {};
  int order = 22;
  if (rados_conf_get(pool->cluster_->handle(), "rbd_default_order", order_text, sizeof order_text) == 0)
    order = std::clamp(std::atoi(order_text), 12, 26);
  const uint64_t gran = pool->capabilities().size_granularity;
  pool->max_image_bytes_ = (kMaxImageObjects << order) / gran * gran;
  pool->flattener_ = std::make_unique<Flattener>();
  RbdPool* self = pool.get();
  pool->flattener_->Enqueue("sweep", [self](const std::atomic<bool>&) { self->Sweep(); });
  pool->collect_timer_ = std::make_unique<PeriodicThread>(
      std::chrono::duration_cast<std::chrono::milliseconds>(kCollectRetryPeriod),
      [self] { self->RunCollectRetries(); });
  spdlog::info("rbd pool {}: {} rados pool {} journal {}", options.name,
               pool->cluster_->describe(), options.defaults.rbd_pool, object);
  return pool;
}

Capabilities RbdPool::capabilities() const {
  Capabilities c;
  c.modes = {VolumeMode::kBlock, VolumeMode::kFilesystem};
  c.block_access_modes.assign(std::begin(kAllAccessModes), std::end(kAllAccessModes));
  c.filesystem_access_modes = {AccessMode::kSingleNodeWriter, AccessMode::kSingleNodeReaderOnly,
                               AccessMode::kMultiNodeReaderOnly,
                               AccessMode::kSingleNodeSingleWriter,
                               AccessMode::kSingleNodeMultiWriter};
  // The kernel attachment maps images with krbd, which gives a block device: a Filesystem-mode
  // volume would need a file system made and mounted on it, which vdisk does not do
  // (rbd_node.cc). The user-space attachment (attach: vhost-user) serves Filesystem volumes.
  c.attach_modes = {VolumeMode::kBlock};
  c.attach_note =
      "the kernel attachment of an RBD volume is a block device (krbd) and vdisk puts no file "
      "system on it: use volumeMode: Block, or attach: vhost-user to serve the image to a VM";
  c.size_granularity = 1 << 20;
  c.max_volume_bytes = max_image_bytes_;
  c.snapshots = true;
  c.clone_from_snapshot = true;
  c.clone_from_volume = true;
  c.changed_extents = true;
  c.online_expand = true;
  c.node_local = false;
  c.fast_clone = true;
  c.write_holds = true;
  c.mutable_params = true;
  return c;
}

Status RbdPool::CheckImageSize(uint64_t size_bytes) const {
  if (size_bytes <= max_image_bytes_) return Status();
  return absl::OutOfRangeError(absl::StrCat("volume size ", size_bytes, " exceeds the largest RBD image vdisk makes (",
                                            max_image_bytes_, " bytes: ", kMaxImageObjects,
                                            " objects, librbd's object map limit)"));
}

Status RbdPool::validate_params(const Params& params) const {
  ASSIGN_OR_RETURN(VolumeOptions vo, ParseVolumeParams(options_.defaults, params));
  auto* self = const_cast<RbdPool*>(this);
  RETURN_IF_ERROR(self->Io(vo.rbd_pool).status());
  if (!vo.data_pool.empty()) RETURN_IF_ERROR(IoCtx::Open(cluster_, vo.data_pool).status());
  return Status();
}

StatusOr<Capacity> RbdPool::capacity(const Params& params) {
  ASSIGN_OR_RETURN(VolumeOptions vo, ParseVolumeParams(options_.defaults, params));
  ASSIGN_OR_RETURN(std::string out, cluster_->MonCommand(R"({"prefix":"df","format":"json"})"));
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (!j.is_object()) return absl::InternalError("ceph df: unparsable output");
  const std::string& data_pool = vo.data_pool.empty() ? vo.rbd_pool : vo.data_pool;
  Capacity cap;
  cap.max_volume_bytes = max_image_bytes_;
  try {
    bool found = false;
    for (const auto& p : j.at("pools")) {
      if (p.value("name", "") != data_pool) continue;
      // What the pool can hold, replication accounted for: what it stores plus what it can
      // still take (the cluster's raw total counts every replica).
      cap.available_bytes = p.at("stats").value("max_avail", uint64_t{0});
      cap.total_bytes = p.at("stats").value("stored", uint64_t{0}) + cap.available_bytes;
      found = true;
    }
    if (!found)
      return absl::InvalidArgumentError(
          absl::StrCat("rados pool '", data_pool, "' does not exist in ", cluster_->describe()));
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat("ceph df: ", e.what()));
  }
  return cap;
}

// ---------------------------------------------------------------------------------------------
// Records.

StatusOr<const IoCtx*> RbdPool::Io(const std::string& rbd_pool) {
  std::lock_guard lock(io_mu_);
  auto it = ios_.find(rbd_pool);
  if (it != ios_.end()) return it->second.get();
  ASSIGN_OR_RETURN(IoCtx io, IoCtx::Open(cluster_, rbd_pool));
  auto owned = std::make_unique<IoCtx>(std::move(io));
  const IoCtx* raw = owned.get();
  ios_.emplace(rbd_pool, std::move(owned));
  return raw;
}

StatusOr<std::optional<VolumeRecord>> RbdPool::ReadVolumeAny(const std::string& id) {
  ASSIGN_OR_RETURN(auto raw, journal_->Get(VolumeKey(id)));
  if (!raw) return std::optional<VolumeRecord>();
  ASSIGN_OR_RETURN(VolumeRecord rec, VolumeRecordFromJson(*raw));
  return std::optional<VolumeRecord>(std::move(rec));
}

StatusOr<std::optional<SnapshotRecord>> RbdPool::ReadSnapshotAny(const std::string& id) {
  ASSIGN_OR_RETURN(auto raw, journal_->Get(SnapshotKey(id)));
  if (!raw) return std::optional<SnapshotRecord>();
  ASSIGN_OR_RETURN(SnapshotRecord rec, SnapshotRecordFromJson(*raw));
  return std::optional<SnapshotRecord>(std::move(rec));
}

StatusOr<VolumeRecord> RbdPool::ReadVolume(const std::string& id) {
  RETURN_IF_ERROR(ParseVolumeId(id).status());
  ASSIGN_OR_RETURN(auto rec, ReadVolumeAny(id));
  if (!rec || (rec->state != RecordState::kReady && rec->state != RecordState::kPending))
    return absl::NotFoundError(absl::StrCat("no volume with id '", id, "' in rbd pool ",
                                            options_.name));
  return std::move(*rec);
}

StatusOr<SnapshotRecord> RbdPool::ReadSnapshot(const std::string& id) {
  RETURN_IF_ERROR(ParseSnapshotId(id).status());
  ASSIGN_OR_RETURN(auto rec, ReadSnapshotAny(id));
  if (!rec || rec->state != RecordState::kReady)
    return absl::NotFoundError(absl::StrCat("no snapshot with id '", id, "' in rbd pool ",
                                            options_.name));
  return std::move(*rec);
}

Status RbdPool::WriteVolume(VolumeRecord rec, const std::vector<std::string>& remove,
                            const std::map<std::string, std::string>& extra,
                            std::string* written) {
  std::map<std::string, std::string> set = extra;
  const std::string json = ToJson(rec);
  set[VolumeKey(rec.id)] = json;
  RETURN_IF_ERROR(journal_->Update(set, remove));
  if (written) *written = json;
  return Status();
}

Status RbdPool::WriteSnapshot(SnapshotRecord rec, const std::vector<std::string>& remove,
                              const std::map<std::string, std::string>& extra,
                              std::string* written) {
  std::map<std::string, std::string> set = extra;
  const std::string json = ToJson(rec);
  set[SnapshotKey(rec.id)] = json;
  RETURN_IF_ERROR(journal_->Update(set, remove));
  if (written) *written = json;
  return Status();
}

Status RbdPool::CommitRecord(const std::string& key, const std::string& json,
                             const std::string& written,
                             const std::function<Status()>& write_locked) {
  if (!written.empty()) {
    ASSIGN_OR_RETURN(bool done, journal_->UpdateIfUnchanged(key, written, {{key, json}}));
    if (done) return Status();
    spdlog::debug("rbd pool {}: {} changed since this request stored it; committing under the "
                  "journal lock", options_.name, key);
  }
  ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
  return write_locked();
}

Status RbdPool::CommitVolume(const VolumeRecord& rec, const std::string& written) {
  // The fast path compares against what this request wrote (a take-over changed it); under the
  // lock, the record must still name us as its creator.
  return CommitRecord(VolumeKey(rec.id), ToJson(rec), written, [&] {
    RETURN_IF_ERROR(StillOwned(rec));
    return WriteVolume(rec);
  });
}

Status RbdPool::CommitSnapshot(const SnapshotRecord& rec, const std::string& written) {
  return CommitRecord(SnapshotKey(rec.id), ToJson(rec), written, [&] {
    RETURN_IF_ERROR(StillOwned(rec));
    return WriteSnapshot(rec);
  });
}

Volume RbdPool::ToVolume(const VolumeRecord& rec) const {
  Volume v;
  v.id = rec.id;
  v.name = rec.name;
  v.size_bytes = rec.size_bytes;
  v.mode = rec.mode;
  v.access_modes = rec.access_modes;
  v.params = rec.params;
  v.source = rec.source;
  v.pending = rec.state == RecordState::kPending;
  v.created_unix_ns = rec.created_unix_ns;
  v.mutable_params = rec.mutable_params;
  v.context = {{"rbdPool", rec.rbd_pool}, {"rbdImage", rec.image}};
  if (!rec.data_pool.empty()) v.context["rbdDataPool"] = rec.data_pool;
  return v;
}

Snapshot RbdPool::ToSnapshot(const SnapshotRecord& rec) {
  Snapshot s;
  s.id = rec.id;
  s.name = rec.name;
  s.source_volume_id = rec.source_volume_id;
  s.size_bytes = rec.size_bytes;
  s.created_unix_ns = rec.created_unix_ns;
  s.ready = rec.state == RecordState::kReady;
  return s;
}

bool RbdPool::CreatorAlive(const std::string& id, const std::string& owner, int64_t updated_ns) {
  if (owner == owner_) {
    std::lock_guard lock(building_mu_);
    return building_.contains(id);
  }
  // Provably gone: its lease ran out (killed, crashed, its node lost), or it never had one.
  if (!lease_->Alive(owner)) {
    spdlog::info("rbd pool {}: creating record {} belongs to {}, whose owner lease has run out: "
                 "taking it over", options_.name, id, owner);
    return false;
  }
  // Alive but silent for too long: stuck; its commit will see the take-over (StillOwned).
  return NowUnixNs() - updated_ns < options_.abandon_after_s * 1000000000LL;
}

Status RbdPool::StillOwned(const VolumeRecord& rec) {
  ASSIGN_OR_RETURN(auto now, ReadVolumeAny(rec.id));
  if (now && now->owner == owner_ && now->state == RecordState::kCreating) return Status();
  return absl::AbortedError(absl::StrCat("volume ", rec.id, " ('", rec.name,
                                         "') was taken over by another vdisk process while this "
                                         "one was stalled; retry"));
}

Status RbdPool::StillOwned(const SnapshotRecord& rec) {
  ASSIGN_OR_RETURN(auto now, ReadSnapshotAny(rec.id));
  if (now && now->owner == owner_ && now->state == RecordState::kCreating) return Status();
  return absl::AbortedError(absl::StrCat("snapshot ", rec.id, " ('", rec.name,
                                         "') was taken over by another vdisk process while this "
                                         "one was stalled; retry"));
}

void RbdPool::MarkBuilding(const std::string& id, bool on) {
  std::lock_guard lock(building_mu_);
  if (on) building_.insert(id);
  else building_.erase(id);
}

// ---------------------------------------------------------------------------------------------
// Clone chains and flatten.

namespace {
constexpr uint64_t kHeadSnap = UINT64_MAX - 1;  // librbd's CEPH_NOSNAP: the image head

// The parent of snapshot `snap_id` (kHeadSnap: the head) of `head`, an image open read-only at
// its head. A snapshot's parent is the head's unless the head was flattened after the snapshot
// without deep-flatten; only then is the handle moved to the snapshot. Opening images at a
// snapshot and closing them trips a use-after-free in librbd 16.2.15 (docs/rbd.md), so the head
// answers whenever it can.
StatusOr<std::optional<ParentRef>> ParentAt(rbd_image_t head, uint64_t snap_id) {
  ASSIGN_OR_RETURN(auto parent, GetParent(head));
  if (parent || snap_id == kHeadSnap) return parent;
  uint64_t features = 0;
  if (int r = rbd_get_features(head, &features); r < 0) return RadosError(r, "rbd_get_features");
  if (features & RBD_FEATURE_DEEP_FLATTEN) return parent;
  if (int r = rbd_snap_set_by_id(head, snap_id); r < 0)
    return RadosError(r, "rbd_snap_set_by_id");
  return GetParent(head);
}

// Number of ancestors above `parent` (0 when there is none), walking the images' heads.
StatusOr<int> ChainDepthFrom(const std::shared_ptr<Cluster>& cluster,
                             std::optional<ParentRef> parent) {
  int depth = 0;
  while (parent) {
    if (++depth > 256) return absl::InternalError("rbd clone chain longer than 256");
    ASSIGN_OR_RETURN(IoCtx pio, IoCtx::Open(cluster, parent->pool));
    ASSIGN_OR_RETURN(Image next, Image::OpenById(pio, parent->image_id, "", true));
    ASSIGN_OR_RETURN(parent, ParentAt(next.get(), parent->snap_id));
  }
  return depth;
}
}  // namespace

StatusOr<int> RbdPool::ChainDepth(const std::string& rbd_pool, const std::string& image_id,
                                  const std::string& snap) {
  ASSIGN_OR_RETURN(const IoCtx* io, Io(rbd_pool));
  ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, image_id, "", true));
  uint64_t snap_id = kHeadSnap;
  if (!snap.empty()) {
    ASSIGN_OR_RETURN(auto snaps, ListSnaps(img.get()));
    auto it = std::find_if(snaps.begin(), snaps.end(),
                           [&](const SnapInfo& s) { return s.name == snap; });
    if (it == snaps.end())
      return absl::NotFoundError(absl::StrCat("snapshot ", rbd_pool, "/", image_id, "@", snap));
    snap_id = it->id;
  }
  ASSIGN_OR_RETURN(auto parent, ParentAt(img.get(), snap_id));
  return ChainDepthFrom(cluster_, std::move(parent));
}

StatusOr<int> RbdPool::ChainDepth(rbd_image_t start) {
  ASSIGN_OR_RETURN(auto parent, GetParent(start));
  return ChainDepthFrom(cluster_, std::move(parent));
}

namespace {
struct FlattenProgress {
  std::string what;
  const std::atomic<bool>* cancel;
  metrics::OperationMetrics* op;
  int last_decile = -1;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

int OnFlattenProgress(uint64_t offset, uint64_t total, void* arg) {
  auto* p = static_cast<FlattenProgress*>(arg);
  int pct = total ? static_cast<int>(offset * 100 / total) : 100;
  p->op->Update(offset, total);
  if (pct / 10 > p->last_decile) {
    p->last_decile = pct / 10;
    spdlog::info("rbd flatten {}: {}% ({:.1f} s)", p->what, pct,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - p->start)
                     .count());
  }
  return p->cancel && p->cancel->load() ? -ECANCELED : 0;
}
}  // namespace

Status RbdPool::Flatten(const std::string& rbd_pool, const std::string& image_id,
                        const std::string& volume_id, const std::atomic<bool>* cancel,
                        bool heartbeat) {
  ASSIGN_OR_RETURN(const IoCtx* io, Io(rbd_pool));
  ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, image_id, "", false));
  ASSIGN_OR_RETURN(auto parent, GetParent(img.get()));
  if (!parent) return Status();
  metrics::OperationMetrics op("flatten", name(), volume_id);
  FlattenProgress progress{absl::StrCat("volume ", volume_id, " (", rbd_pool, "/", image_id,
                                        ", parent ", parent->pool, "/", parent->image, ")"),
                           cancel, &op};
  spdlog::info("rbd flatten {}: start", progress.what);
  int r = 0;
  if (!heartbeat) {
    r = rbd_flatten_with_progress(img.get(), &OnFlattenProgress, &progress);
  } else {
    // Keep the creating record fresh while the request waits, so nobody takes it for abandoned.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread worker([&] {
      int rr = rbd_flatten_with_progress(img.get(), &OnFlattenProgress, &progress);
      std::lock_guard lock(mu);
      r = rr;
      done = true;
      cv.notify_all();
    });
    std::unique_lock lock(mu);
    const int beat = std::max(1, std::min(kHeartbeatSeconds, options_.abandon_after_s / 3));
    while (!cv.wait_for(lock, std::chrono::seconds(beat), [&] { return done; })) {
      lock.unlock();
      auto held = journal_->Acquire();
      if (held.ok()) {
        auto rec = ReadVolumeAny(volume_id);
        if (rec.ok() && *rec && (*rec)->state == RecordState::kCreating && (*rec)->owner == owner_) {
          (*rec)->updated_unix_ns = NowUnixNs();
          (void)WriteVolume(**rec);
        }
      }
      lock.lock();
    }
    lock.unlock();
    worker.join();
  }
  if (r == -ECANCELED) {
    op.Finish(absl::CancelledError());
    return absl::CancelledError(absl::StrCat("flatten of ", progress.what));
  }
  if (r == -EINVAL) {  // raced with another flatten: fine if the parent is gone
    auto again = GetParent(img.get());
    if (again.ok() && !*again) r = 0;
  }
  if (r < 0) return RadosError(r, absl::StrCat("flatten of ", progress.what));
  op.Finish(Status());
  spdlog::info("rbd flatten {}: done in {:.1f} s", progress.what,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - progress.start)
                   .count());
  return Status();
}

void RbdPool::ScheduleFlatten(const std::string& volume_id) {
  flattener_->Enqueue("flatten/" + volume_id, [this, volume_id](const std::atomic<bool>& cancel) {
    RunFlattenJob(volume_id, cancel);
  });
}

void RbdPool::RunFlattenJob(const std::string& volume_id, const std::atomic<bool>& cancel) {
  auto rec = ReadVolumeAny(volume_id);
  if (!rec.ok() || !*rec) return;
  const VolumeRecord& r = **rec;
  if (!r.flatten_pending ||
      (r.state != RecordState::kReady && r.state != RecordState::kPending))
    return;
  std::optional<ParentRef> parent;
  if (auto io = Io(r.rbd_pool); io.ok()) {
    if (auto img = Image::OpenById(**io, r.image_id, "", true); img.ok()) {
      if (auto p = GetParent(img->get()); p.ok()) parent = *p;
    }
  }
  Status s = Flatten(r.rbd_pool, r.image_id, volume_id, &cancel, false);
  if (!s.ok()) {
    if (!absl::IsCancelled(s))
      spdlog::warn("rbd pool {}: background flatten of {} failed (retried at next start): {}",
                   options_.name, volume_id, s.ToString());
    return;
  }
  {
    auto held = journal_->Acquire();
    if (!held.ok()) return;
    auto again = ReadVolumeAny(volume_id);
    if (again.ok() && *again && (*again)->flatten_pending) {
      (*again)->flatten_pending = false;
      (*again)->chain_depth = 0;
      (void)WriteVolume(**again);
    }
  }
  if (parent && IsIdSafePoolName(parent->pool))
    CollectVolume(MakeVolumeId(parent->pool, parent->image));
}

void RbdPool::WaitForBackgroundWork() {
  for (;;) {
    flattener_->WaitIdle();
    {
      std::lock_guard lock(collect_mu_);
      if (collect_retry_.empty()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// ---------------------------------------------------------------------------------------------
// Garbage collection.

Status RbdPool::ForgetRecord(const std::string& key) {
  ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
  return journal_->Update({}, {key});
}

namespace {
// What keeps a deleted volume's image (empty: nothing): a user snapshot (a CSI snapshot, or the
// hidden snapshot of a clone being made), or a trashed snapshot that still has children. A
// trashed snapshot without children does not keep it: librbd drops such a snapshot when its
// last child goes, but a process killed between the child's detach and that drop (or the drop
// failing) leaves it, and rbd_remove deletes it with the image. Moves `image` off its head.
StatusOr<std::string> WhatKeepsImage(rbd_image_t image) {
  ASSIGN_OR_RETURN(auto snaps, ListSnaps(image));
  for (const auto& s : snaps) {
    rbd_snap_namespace_type_t type;
    if (int r = rbd_snap_get_namespace_type(image, s.id, &type); r < 0) {
      if (r == -ENOENT) continue;  // dropped meanwhile
      return RadosError(r, "rbd_snap_get_namespace_type");
    }
    if (type != RBD_SNAP_NAMESPACE_TYPE_TRASH) return absl::StrCat("snapshot ", s.name);
  }
  for (const auto& s : snaps) {
    if (int r = rbd_snap_set_by_id(image, s.id); r < 0) {
      if (r == -ENOENT) continue;
      return RadosError(r, "rbd_snap_set_by_id");
    }
    size_t max = 8;
    for (;;) {
      std::vector<rbd_linked_image_spec_t> children(max);
      int r = rbd_list_children3(image, children.data(), &max);
      if (r == -ERANGE) continue;
      if (r < 0) return RadosError(r, "rbd_list_children3");
      std::string kids;
      for (size_t i = 0; i < max; ++i)
        absl::StrAppend(&kids, i ? ", " : "", children[i].pool_name, "/", children[i].image_name,
                        children[i].trash ? " (in the rbd trash)" : "");
      rbd_linked_image_spec_list_cleanup(children.data(), max);
      if (max > 0) return absl::StrCat("trashed snapshot ", s.name, " has clones: ", kids);
      break;
    }
  }
  return std::string();
}
}  // namespace

void RbdPool::RetryCollect(const std::string& volume_id, const std::string& why) {
  std::lock_guard lock(collect_mu_);
  const auto now = std::chrono::steady_clock::now();
  auto [it, first] = collect_retry_.try_emplace(volume_id, now);
  if (now - it->second > kCollectRetryFor) {
    spdlog::warn("rbd pool {}: deleted volume {}: image still not removable after {} min ({}); "
                 "left for the next start's sweep", options_.name, volume_id,
                 std::chrono::duration_cast<std::chrono::minutes>(kCollectRetryFor).count(), why);
    collect_retry_.erase(it);
  } else if (first) {
    spdlog::info("rbd pool {}: deleted volume {}: image kept for now ({}); retried every {} s",
                 options_.name, volume_id, why, kCollectRetryPeriod.count());
  }
}

void RbdPool::SettledCollect(const std::string& volume_id) {
  std::lock_guard lock(collect_mu_);
  collect_retry_.erase(volume_id);
}

void RbdPool::RunCollectRetries() {
  {
    std::lock_guard lock(collect_mu_);
    if (collect_retry_.empty()) return;
  }
  flattener_->Enqueue("collect-retry", [this](const std::atomic<bool>& cancel) {
    std::vector<std::string> ids;
    {
      std::lock_guard lock(collect_mu_);
      for (const auto& [id, since] : collect_retry_) ids.push_back(id);
    }
    for (const auto& id : ids) {
      if (cancel) return;
      CollectVolume(id);
    }
  });
}

void RbdPool::ScheduleCollectDeleted() {
  flattener_->Enqueue("collect-deleted", [this](const std::atomic<bool>&) { CollectDeleted(); });
}

void RbdPool::CollectDeleted() {
  auto vols = journal_->List("v/");
  if (!vols.ok()) {
    spdlog::warn("rbd pool {}: collecting deleted volumes: {}", options_.name,
                 vols.status().ToString());
    return;
  }
  for (const auto& [key, raw] : *vols) {
    auto rec = VolumeRecordFromJson(raw);
    if (rec.ok() && rec->state == RecordState::kDeleted) CollectVolume(rec->id);
  }
}

void RbdPool::CollectVolume(const std::string& volume_id, int depth) {
  if (depth > 64) return;
  auto rec = ReadVolumeAny(volume_id);
  if (!rec.ok()) return RetryCollect(volume_id, rec.status().ToString());
  if (!*rec || (*rec)->state != RecordState::kDeleted) return SettledCollect(volume_id);
  const VolumeRecord& r = **rec;
  auto io = Io(r.rbd_pool);
  if (!io.ok()) return RetryCollect(volume_id, io.status().ToString());
  std::optional<ParentRef> parent;
  bool image_gone = false;
  // The sweep, a retry and the deletions of its last children may all collect this image.
  std::optional<ImageLocks::Guard> one_at_a_time;
  one_at_a_time.emplace(image_locks_.Lock(volume_id));
  {
    auto img = r.image_id.empty() ? Image::OpenByName(**io, r.image, "", true)
                                  : Image::OpenById(**io, r.image_id, "", true);
    if (!img.ok()) {
      if (!absl::IsNotFound(img.status())) return RetryCollect(volume_id, img.status().ToString());
      // Removed by a process killed before it forgot the record (or by a concurrent collector):
      // rbd_remove below drops whatever librbd left (directory entry, id object).
      image_gone = true;
    } else {
      auto p = GetParent(img->get());
      if (!p.ok()) return RetryCollect(volume_id, p.status().ToString());
      parent = *p;
      auto keeps = WhatKeepsImage(img->get());
      if (!keeps.ok()) return RetryCollect(volume_id, keeps.status().ToString());
      // Still needed by snapshots / clones: the deletion of the last of them collects it again.
      if (!keeps->empty()) {
        spdlog::info("rbd pool {}: deleted volume {}: image {}/{} kept while needed ({})",
                     options_.name, volume_id, r.rbd_pool, r.image, *keeps);
        return SettledCollect(volume_id);
      }
    }
  }
  int rr = rbd_remove((*io)->get(), r.image.c_str());
  // A handle closing concurrently (a sweep, a flatten) lingers as a watcher for a moment.
  for (int i = 0; rr == -EBUSY && i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rr = rbd_remove((*io)->get(), r.image.c_str());
  }
  if (rr == -ECHILD || rr == -ENOTEMPTY) {
    // A snapshot or clone appeared since the check (nothing vdisk does to a deleted volume):
    // its deletion collects this one again.
    spdlog::info("rbd pool {}: deleted volume {}: image {}/{} kept: {}", options_.name, volume_id,
                 r.rbd_pool, r.image, std::strerror(-rr));
    return SettledCollect(volume_id);
  }
  if (rr < 0 && rr != -ENOENT)
    return RetryCollect(volume_id, absl::StrCat("removing image ", r.rbd_pool, "/", r.image, ": ",
                                                std::strerror(-rr)));
  one_at_a_time.reset();  // before the parent's key below
  if (Status s = ForgetRecord(VolumeKey(volume_id)); !s.ok())
    return RetryCollect(volume_id, s.ToString());
  SettledCollect(volume_id);
  if (image_gone) {
    spdlog::info("rbd pool {}: deleted volume {}: image already gone", options_.name, volume_id);
    // Its parent (if it had one) may be waiting for it and is no longer known.
    ScheduleCollectDeleted();
    return;
  }
  spdlog::info("rbd pool {}: removed image {}/{} of deleted volume {}", options_.name,
               r.rbd_pool, r.image, volume_id);
  if (parent && IsIdSafePoolName(parent->pool))
    CollectVolume(MakeVolumeId(parent->pool, parent->image), depth + 1);
}

namespace {
// True if the image was made for record `id`: tagged with it (metadata vdisk.id); or a clone
// tagged with another id, which librbd copied from the parent with the rest of its metadata (a
// crash between the clone and tagging; the name is the record's own random one); or untagged and
// created after the record (a crash between create and tagging).
bool ImageBelongsTo(rbd_image_t image, const std::string& id, int64_t record_created_ns) {
  char value[256];
  size_t len = sizeof value;
  int r = rbd_metadata_get(image, "vdisk.id", value, &len);
  if (r >= 0) {
    if (std::string(value) == id) return true;
    auto parent = GetParent(image);
    return parent.ok() && parent->has_value();
  }
  struct timespec ts = {};
  if (rbd_get_create_timestamp(image, &ts) < 0) return false;
  int64_t created = ts.tv_sec * 1000000000LL + ts.tv_nsec;
  return created + 1000000000LL >= record_created_ns;
}
}  // namespace

bool RbdPool::ClaimIfAbandoned(VolumeRecord& rec) {
  if (rec.state != RecordState::kCreating || CreatorAlive(rec.id, rec.owner, rec.updated_unix_ns))
    return false;
  if (!lease_->Ensure().ok()) return false;  // the record will name us: be provably alive
  rec.owner = owner_;
  rec.updated_unix_ns = NowUnixNs();
  MarkBuilding(rec.id, true);
  if (!WriteVolume(rec).ok()) {
    MarkBuilding(rec.id, false);
    return false;
  }
  return true;
}

bool RbdPool::ClaimIfAbandoned(SnapshotRecord& rec) {
  if (rec.state != RecordState::kCreating || CreatorAlive(rec.id, rec.owner, rec.updated_unix_ns))
    return false;
  if (!lease_->Ensure().ok()) return false;
  rec.owner = owner_;
  rec.updated_unix_ns = NowUnixNs();
  MarkBuilding(rec.id, true);
  if (!WriteSnapshot(rec).ok()) {
    MarkBuilding(rec.id, false);
    return false;
  }
  return true;
}

Status RbdPool::DiscardCreatingVolume(const VolumeRecord& rec) {
  auto discard = [&]() -> Status {
    ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
    bool remove = false;
    {
      auto img = Image::OpenByName(*io, rec.image, "", true);
      if (img.ok()) {
        remove = ImageBelongsTo(img->get(), rec.id, rec.created_unix_ns);
        if (!remove)
          spdlog::warn("rbd pool {}: image {}/{} is not ours (half-made volume {}); left alone",
                       options_.name, rec.rbd_pool, rec.image, rec.id);
      } else if (absl::IsNotFound(img.status())) {
        // Nothing to open, but a creator killed inside rbd_create4 / rbd_clone3 can leave the
        // image's directory entry and id object without a header. The name is this record's own
        // random one, so whatever is there is ours: let librbd remove what exists.
        remove = true;
      } else {
        return img.status();
      }
    }
    if (remove) {
      // A crashed creator's exclusive lock is broken by librbd once its watch lapses.
      int r = rbd_remove(io->get(), rec.image.c_str());
      for (int i = 0; r == -EBUSY && i < 5; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        r = rbd_remove(io->get(), rec.image.c_str());
      }
      if (r < 0 && r != -ENOENT)
        return RadosError(r, absl::StrCat("removing half-made image ", rec.rbd_pool, "/",
                                          rec.image));
    }
    if (!rec.clone_snap.empty()) {
      ASSIGN_OR_RETURN(const IoCtx* sio, Io(rec.clone_src_pool));
      auto src = Image::OpenById(*sio, rec.clone_src_image_id, "", false);
      if (src.ok()) {
        int r = rbd_snap_remove(src->get(), rec.clone_snap.c_str());
        if (r < 0 && r != -ENOENT)
          return RadosError(r, absl::StrCat("removing hidden snapshot ", rec.clone_snap));
      } else if (!absl::IsNotFound(src.status())) {
        return src.status();
      }
    }
    ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
    ASSIGN_OR_RETURN(auto now, ReadVolumeAny(rec.id));
    if (!now || now->owner != owner_ || now->state != RecordState::kCreating) return Status();
    std::vector<std::string> keys = {VolumeKey(rec.id)};
    auto name_owner = journal_->Get(VolumeNameKey(rec.name));
    if (name_owner.ok() && *name_owner && **name_owner == rec.id)
      keys.push_back(VolumeNameKey(rec.name));
    RETURN_IF_ERROR(journal_->Update({}, keys));
    spdlog::info("rbd pool {}: discarded half-made volume {} '{}'", options_.name, rec.id,
                 rec.name);
    return Status();
  };
  Status s = discard();
  MarkBuilding(rec.id, false);
  return s;
}

Status RbdPool::DiscardCreatingSnapshot(const SnapshotRecord& rec) {
  auto discard = [&]() -> Status {
    ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
    {
      auto img = Image::OpenById(*io, rec.image_id, "", false);
      if (img.ok()) {
        int r = rbd_snap_remove(img->get(), rec.snap.c_str());
        if (r < 0 && r != -ENOENT)
          return RadosError(r, absl::StrCat("removing half-made snapshot ", rec.snap));
      } else if (!absl::IsNotFound(img.status())) {
        return img.status();
      }
    }
    ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
    ASSIGN_OR_RETURN(auto now, ReadSnapshotAny(rec.id));
    if (!now || now->owner != owner_ || now->state != RecordState::kCreating) return Status();
    std::vector<std::string> keys = {SnapshotKey(rec.id)};
    auto name_owner = journal_->Get(SnapshotNameKey(rec.name));
    if (name_owner.ok() && *name_owner && **name_owner == rec.id)
      keys.push_back(SnapshotNameKey(rec.name));
    RETURN_IF_ERROR(journal_->Update({}, keys));
    spdlog::info("rbd pool {}: discarded half-made snapshot {} '{}'", options_.name, rec.id,
                 rec.name);
    return Status();
  };
  Status s = discard();
  MarkBuilding(rec.id, false);
  return s;
}

void RbdPool::Sweep() {
  auto snaps = journal_->List("s/");
  if (snaps.ok()) {
    for (const auto& [key, raw] : *snaps) {
      auto rec = SnapshotRecordFromJson(raw);
      if (!rec.ok()) continue;
      if (rec->state == RecordState::kDeleting) {
        (void)delete_snapshot(rec->id);  // finishes the deletion
      } else if (rec->state == RecordState::kCreating &&
                 !CreatorAlive(rec->id, rec->owner, rec->updated_unix_ns)) {
        std::optional<SnapshotRecord> claimed;
        {
          auto held = journal_->Acquire();
          if (!held.ok()) continue;
          auto again = ReadSnapshotAny(rec->id);
          if (again.ok() && *again && ClaimIfAbandoned(**again)) claimed = **again;
        }
        if (claimed) (void)DiscardCreatingSnapshot(*claimed);
      }
    }
  }
  auto vols = journal_->List("v/");
  if (!vols.ok()) {
    spdlog::warn("rbd pool {}: sweep: {}", options_.name, vols.status().ToString());
    return;
  }
  for (const auto& [key, raw] : *vols) {
    auto rec = VolumeRecordFromJson(raw);
    if (!rec.ok()) continue;
    switch (rec->state) {
      case RecordState::kDeleted:
        CollectVolume(rec->id);
        break;
      case RecordState::kCreating:
        if (!CreatorAlive(rec->id, rec->owner, rec->updated_unix_ns)) {
          std::optional<VolumeRecord> claimed;
          {
            auto held = journal_->Acquire();
            if (!held.ok()) break;
            auto again = ReadVolumeAny(rec->id);
            if (again.ok() && *again && ClaimIfAbandoned(**again)) claimed = **again;
          }
          if (claimed) (void)DiscardCreatingVolume(*claimed);
        }
        break;
      case RecordState::kPending:
      case RecordState::kReady:
        if (rec->flatten_pending) ScheduleFlatten(rec->id);
        break;
      case RecordState::kDeleting:
        break;
    }
  }
}

}  // namespace vdisk::blockdev::rbd
