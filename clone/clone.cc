#include "clone/clone.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
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

std::string TempSnapshotName(const std::string& volume_name) {
  return absl::StrCat(volume_name, "@vdisk-clone");
}

// Size of the source; FAILED_PRECONDITION while it is not usable yet.
StatusOr<uint64_t> SourceSize(Pool& pool, const VolumeSource& src) {
  if (IsSnapshotSource(src)) {
    ASSIGN_OR_RETURN(auto snap, pool.get_snapshot(src.id));
    if (!snap.ready)
      return absl::FailedPreconditionError(absl::StrCat("snapshot ", src.id, " is not ready"));
    return snap.size_bytes;
  }
  ASSIGN_OR_RETURN(auto vol, pool.get_volume(src.id));
  if (vol.pending)
    return absl::FailedPreconditionError(
        absl::StrCat("source volume ", src.id, " is still being filled"));
  return vol.size_bytes;
}

// Is `existing` (a volume with the requested name) the clone this request asks for?
StatusOr<bool> SameClone(Pool& pool, const Volume& existing, const VolumeSource& want) {
  if (existing.source == want) return true;
  // The snapshot strategy records its temporary snapshot as the source.
  if (want.kind == VolumeSource::Kind::kVolume &&
      existing.source.kind == VolumeSource::Kind::kSnapshot) {
    auto snap = pool.get_snapshot(existing.source.id);
    if (snap.ok()) return snap->source_volume_id == want.id && snap->name == TempSnapshotName(existing.name);
    if (absl::IsNotFound(snap.status())) return !existing.pending;  // temp snapshot cleaned up
    return snap.status();
  }
  return false;
}

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
    c.progress = o.progress;
    c.cancel = o.cancel;
    spdlog::info("clone: host copy {} {} -> volume {} ({}){}", IsSnapshotSource(src) ? "snapshot" : "volume",
                 src.id, dst.id, dst.name, resuming ? " (resuming)" : "");
    auto copied = blockdev::CopyDevice(**from, **to, c);
    if (!copied.ok()) {
      if (absl::IsCancelled(copied.status())) {
        spdlog::warn("clone: copy into {} cancelled; the pending volume stays for a retry", dst.id);
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
  const std::string snap_name = TempSnapshotName(req.name);
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

StatusOr<Volume> CreateVolumeFromSource(Pool& pool, const VolumeRequest& req_in,
                                        const CloneOptions& options, CloneReport* report) {
  if (req_in.source.kind == VolumeSource::Kind::kNone)
    return absl::InvalidArgumentError("clone: the request has no content source");
  if (req_in.source.id.empty()) return absl::InvalidArgumentError("clone: empty source id");
  if (req_in.name.empty()) return absl::InvalidArgumentError("clone: empty volume name");
  Pool& src_pool = options.source_pool ? *options.source_pool : pool;
  const bool same_pool = &src_pool == &pool ||
                         (src_pool.kind() == pool.kind() && src_pool.name() == pool.name());
  ASSIGN_OR_RETURN(uint64_t src_size, SourceSize(src_pool, req_in.source));
  VolumeRequest req = req_in;
  req.pending = false;
  if (req.size_bytes == 0) {
    const uint64_t g = std::max<uint64_t>(1, pool.capabilities().size_granularity);
    req.size_bytes = (src_size + g - 1) / g * g;
  }
  if (req.size_bytes < src_size)
    return absl::OutOfRangeError(absl::StrCat("clone: requested ", req.size_bytes,
                                              " bytes, smaller than the source (", src_size, ")"));
  // What the new volume records as its source.
  const VolumeSource recorded = same_pool ? req.source : VolumeSource{};

  // A repeat: finished, or an interrupted host copy to resume.
  ASSIGN_OR_RETURN(auto existing, pool.find_volume_by_name(req.name));
  if (existing) {
    ASSIGN_OR_RETURN(bool same, SameClone(pool, *existing, recorded));
    if (!same)
      return absl::AlreadyExistsError(absl::StrCat(
          "volume name '", req.name, "' is taken by volume ", existing->id,
          " with a different content source"));
    if (!existing->pending) {
      if (report) report->already_done = true;
      return *existing;
    }
    if (!options.allow_host_copy && options.strategy != Strategy::kHostCopy)
      return absl::FailedPreconditionError(absl::StrCat(
          "clone: volume ", existing->id, " is a pending host copy and host copies are disabled"));
    return HostCopyInto(pool, src_pool, *existing, req.source, options, /*resuming=*/true,
                        report);
  }

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

}  // namespace vdisk::clone
