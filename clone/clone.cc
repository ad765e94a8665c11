#include "clone/clone.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "clone/create.h"
#include "clone/strategies.h"
#include "common/operation_metrics.h"
#include "spdlog/spdlog.h"

namespace vdisk::clone {

using blockdev::Pool;
using blockdev::Volume;
using blockdev::VolumeRequest;
using blockdev::VolumeSource;

std::string_view ToString(Strategy s) {
  switch (s) {
    case Strategy::kAuto: return "auto";
    case Strategy::kOffload: return "offload";
    case Strategy::kSnapshot: return "snapshot";
    case Strategy::kHostCopy: return "host-copy";
  }
  return "unknown";
}

namespace {

bool IsSnapshotSource(const VolumeSource& s) { return s.kind == VolumeSource::Kind::kSnapshot; }

std::string CheckpointPath(const Pool& pool, const CloneOptions& o, const std::string& id) {
  if (o.checkpoint_dir.empty()) return "";
  return absl::StrCat(o.checkpoint_dir, "/", pool.name(), "-", id, ".ckpt");
}

// Copies the source into the pending volume `dst` and completes it.
StatusOr<Volume> HostCopyInto(Pool& pool, Pool& src_pool, const Volume& dst,
                              const VolumeSource& src, const CloneOptions& o, bool resuming,
                              CloneReport* report) {
  const std::string ckpt = CheckpointPath(pool, o, dst.id);
  blockdev::CopyResult result;
  {
    auto from = IsSnapshotSource(src) ? src_pool.open_snapshot(src.id)
                                      : src_pool.open_volume(src.id, true);
    if (!from.ok()) return Annotate(from.status(), "clone: open source");
    auto to = pool.open_volume(dst.id, /*read_only=*/false);
    if (!to.ok()) return Annotate(to.status(), "clone: open destination");
    blockdev::CopyOptions c;
    c.queue_depth = o.queue_depth;
    c.chunk_bytes = o.chunk_bytes;
    // Holes in the source are discarded in the destination: a resumed copy may find stale data
    // there, and a fresh volume loses nothing by it (a discard of a hole is cheap).
    c.discard_holes = true;
    c.flush_at_end = true;
    c.checkpoint_path = ckpt;
    c.checkpoint_every_bytes = o.checkpoint_every_bytes;
    auto op = std::make_shared<metrics::OperationMetrics>("host_copy", pool.name(), dst.id);
    c.progress = [op, &o](const blockdev::CopyProgress& p) {
      op->Update(p.bytes_done, p.bytes_total);
      if (o.progress) o.progress(p);
    };
    c.cancel = o.cancel;
    spdlog::info("clone: host copy {} {} -> volume {} ({}){}", IsSnapshotSource(src) ? "snapshot" : "volume",
                 src.id, dst.id, dst.name, resuming ? " (resuming)" : "");
    auto copied = blockdev::CopyDevice(**from, **to, c);
    op->Finish(copied.status());
    if (!copied.ok()) {
      // A cancel (shutdown) or an unreachable backend (a target restarting, a network outage)
      // is not the copy's fault: the pending volume and its checkpoint stay for the retry.
      if (absl::IsCancelled(copied.status()) || absl::IsUnavailable(copied.status())) {
        spdlog::warn("clone: copy into {} stopped ({}); the pending volume stays for a retry", dst.id,
                     copied.status().ToString());
        return copied.status();
      }
      spdlog::error("clone: copy into {} failed: {}; deleting the pending volume", dst.id,
                    copied.status().ToString());
      to->reset();
      Status del = pool.delete_volume(dst.id);
      if (!del.ok())
        spdlog::error("clone: could not delete pending volume {}: {}", dst.id, del.ToString());
      if (!ckpt.empty()) ::unlink(ckpt.c_str());
      return Annotate(copied.status(), absl::StrCat("clone: copy into volume ", dst.id));
    }
    result = *copied;
  }
  RETURN_IF_ERROR(pool.complete_volume(dst.id));
  if (!ckpt.empty()) ::unlink(ckpt.c_str());
  if (report) {
    report->strategy = Strategy::kHostCopy;
    report->resumed = resuming || result.resumed;
    report->copy = result;
  }
  spdlog::info("clone: volume {} complete ({} bytes read, {} written, {} zero)", dst.id,
               result.bytes_read, result.bytes_written, result.bytes_zero);
  return pool.get_volume(dst.id);
}

StatusOr<Volume> ViaSnapshot(Pool& pool, const VolumeRequest& req, CloneReport* report) {
  const std::string snap_name = internal::TempSnapshotName(req.name);
  ASSIGN_OR_RETURN(auto found, pool.find_snapshot_by_name(snap_name));
  blockdev::Snapshot snap;
  if (found) {
    if (found->source_volume_id != req.source.id)
      return absl::AlreadyExistsError(absl::StrCat("snapshot name '", snap_name,
                                                   "' is taken by a snapshot of another volume"));
    snap = *found;  // left by an interrupted attempt: reuse it
  } else {
    ASSIGN_OR_RETURN(snap, pool.create_snapshot(req.source.id, snap_name));
  }
  VolumeRequest from_snap = req;
  from_snap.source = {VolumeSource::Kind::kSnapshot, snap.id};
  auto vol = pool.create_volume(from_snap);
  Status del = pool.delete_snapshot(snap.id);
  if (!del.ok())
    spdlog::warn("clone: temporary snapshot {} not deleted: {}", snap.id, del.ToString());
  if (vol.ok() && report) report->strategy = Strategy::kSnapshot;
  return vol;
}

}  // namespace

namespace internal {

std::string TempSnapshotName(const std::string& volume_name) {
  return absl::StrCat(volume_name, "@vdisk-clone");
}

StatusOr<Volume> ResumeHostCopy(Pool& pool, Pool& src_pool, const Volume& pending,
                                const VolumeSource& source, const CloneOptions& options,
                                CloneReport* report) {
  if (!options.allow_host_copy && options.strategy != Strategy::kHostCopy)
    return absl::FailedPreconditionError(absl::StrCat(
        "clone: volume ", pending.id, " is a pending host copy and host copies are disabled"));
  return HostCopyInto(pool, src_pool, pending, source, options, /*resuming=*/true, report);
}

StatusOr<Volume> CloneNew(Pool& pool, Pool& src_pool, const VolumeRequest& req,
                          const VolumeSource& recorded, bool same_pool, const CloneOptions& options,
                          CloneReport* report) {
  const blockdev::Capabilities caps = pool.capabilities();
  const bool from_snapshot = IsSnapshotSource(req.source);
  const bool can_offload =
      same_pool && (from_snapshot ? caps.clone_from_snapshot : caps.clone_from_volume);
  const bool can_snapshot =
      same_pool && !from_snapshot && caps.snapshots && caps.clone_from_snapshot;
  Strategy s = options.strategy;
  if (s == Strategy::kAuto) {
    if (can_offload) s = Strategy::kOffload;
    else if (can_snapshot) s = Strategy::kSnapshot;
    else if (options.allow_host_copy) s = Strategy::kHostCopy;
    else
      return absl::FailedPreconditionError(absl::StrCat(
          "clone: pool '", pool.name(), "' cannot clone this source itself and host copies are "
          "disabled"));
  }
  switch (s) {
    case Strategy::kOffload: {
      if (!can_offload)
        return absl::FailedPreconditionError(absl::StrCat(
            "clone: pool '", pool.name(), "' cannot clone from a ",
            from_snapshot ? "snapshot" : "volume", same_pool ? " itself" : " of another pool"));
      ASSIGN_OR_RETURN(Volume v, pool.create_volume(req));
      if (report) report->strategy = Strategy::kOffload;
      return v;
    }
    case Strategy::kSnapshot:
      if (!can_snapshot)
        return absl::FailedPreconditionError(absl::StrCat(
            "clone: the snapshot strategy needs a volume source in a pool that snapshots and "
            "clones snapshots; pool '", pool.name(), "' or this source does not qualify"));
      return ViaSnapshot(pool, req, report);
    case Strategy::kHostCopy:
    case Strategy::kAuto: {
      VolumeRequest pending = req;
      pending.pending = true;
      pending.source = recorded;
      ASSIGN_OR_RETURN(Volume v, pool.create_volume(pending));
      return HostCopyInto(pool, src_pool, v, req.source, options, /*resuming=*/false, report);
    }
  }
  return absl::InternalError("clone: unreachable");
}

}  // namespace internal

StatusOr<Volume> CreateVolumeFromSource(Pool& pool, const VolumeRequest& req,
                                        const CloneOptions& options, CloneReport* report) {
  if (req.source.kind == VolumeSource::Kind::kNone)
    return absl::InvalidArgumentError("clone: the request has no content source");
  CreateOptions create;
  create.clone = options;
  return CreateVolume(pool, req, create, report);
}

}  // namespace vdisk::clone
