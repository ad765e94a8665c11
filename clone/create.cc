#include "clone/create.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "clone/strategies.h"
#include "spdlog/spdlog.h"

namespace vdisk::clone {

using blockdev::Pool;
using blockdev::Volume;
using blockdev::VolumeRequest;
using blockdev::VolumeSource;

namespace {

// Was `existing` made from `want` (what a new volume of this request would record)? The snapshot
// strategy records its temporary snapshot, which names the source volume while it exists.
StatusOr<bool> SameSource(Pool& pool, const Volume& existing, const VolumeSource& want) {
  if (existing.source == want) return true;
  if (want.kind == VolumeSource::Kind::kVolume &&
      existing.source.kind == VolumeSource::Kind::kSnapshot) {
    auto snap = pool.get_snapshot(existing.source.id);
    if (snap.ok())
      return snap->source_volume_id == want.id &&
             snap->name == internal::TempSnapshotName(existing.name);
    if (absl::IsNotFound(snap.status())) return !existing.pending;  // temp snapshot cleaned up
    return snap.status();
  }
  return false;
}

// OK when `existing` answers `req`; ALREADY_EXISTS naming the first difference otherwise.
Status MatchExisting(Pool& pool, const Volume& existing, const VolumeRequest& req,
                     const VolumeSource& recorded, const SizeRange& sizes) {
  std::string why;
  if (existing.size_bytes < sizes.min_bytes ||
      (sizes.max_bytes > 0 && existing.size_bytes > sizes.max_bytes)) {
    why = absl::StrCat("its size ", existing.size_bytes, " is outside the requested capacity range");
  } else if (existing.mode != req.mode) {
    why = absl::StrCat("it is a ", std::string(blockdev::ToString(existing.mode)), " volume");
  } else {
    ASSIGN_OR_RETURN(bool same, SameSource(pool, existing, recorded));
    if (!same) why = "it was created from a different content source";
  }
  for (auto a : req.access_modes) {
    if (!why.empty()) break;
    if (std::find(existing.access_modes.begin(), existing.access_modes.end(), a) ==
        existing.access_modes.end())
      why = absl::StrCat("it was not created for access mode ", std::string(blockdev::ToString(a)));
  }
  for (const auto& [k, v] : req.params) {
    if (!why.empty()) break;
    auto it = existing.params.find(k);
    if (it == existing.params.end() || it->second != v)
      why = absl::StrCat("it was created with a different value of parameter '", k, "'");
  }
  if (why.empty()) return Status();
  return absl::AlreadyExistsError(absl::StrCat("a volume named '", req.name, "' already exists (",
                                               existing.id, ") but ", why));
}

}  // namespace

StatusOr<uint64_t> SourceSize(Pool& pool, const VolumeSource& src) {
  if (src.kind == VolumeSource::Kind::kSnapshot) {
    ASSIGN_OR_RETURN(auto snap, pool.get_snapshot(src.id));
    if (!snap.ready)
      return absl::UnavailableError(absl::StrCat("snapshot ", src.id, " is not ready yet"));
    return snap.size_bytes;
  }
  ASSIGN_OR_RETURN(auto vol, pool.get_volume(src.id));
  if (vol.pending)
    return absl::NotFoundError(absl::StrCat("source volume ", src.id, " is still being populated"));
  return vol.size_bytes;
}

StatusOr<Volume> CreateVolume(Pool& pool, const VolumeRequest& req_in, const CreateOptions& options,
                              CloneReport* report) {
  if (req_in.name.empty()) return absl::InvalidArgumentError("create: empty volume name");
  const bool has_source = req_in.source.kind != VolumeSource::Kind::kNone;
  if (has_source && req_in.source.id.empty())
    return absl::InvalidArgumentError("create: empty source id");
  Pool& src_pool = options.clone.source_pool ? *options.clone.source_pool : pool;
  const bool same_pool = &src_pool == &pool ||
                         (src_pool.kind() == pool.kind() && src_pool.name() == pool.name());
  VolumeRequest req = req_in;
  req.pending = false;
  if (has_source) {
    ASSIGN_OR_RETURN(uint64_t src_size, SourceSize(src_pool, req.source));
    if (req.size_bytes == 0) {
      const uint64_t g = std::max<uint64_t>(1, pool.capabilities().size_granularity);
      req.size_bytes = (src_size + g - 1) / g * g;
    }
    if (req.size_bytes < src_size)
      return absl::OutOfRangeError(absl::StrCat("clone: requested ", req.size_bytes,
                                                " bytes, smaller than the source (", src_size, ")"));
  }
  // What the new volume records as its source: another pool's objects cannot be named.
  const VolumeSource recorded = has_source && same_pool ? req.source : VolumeSource{};

  ASSIGN_OR_RETURN(auto existing, pool.find_volume_by_name(req.name));
  if (existing) {
    const SizeRange sizes = options.accept_sizes.value_or(SizeRange{req.size_bytes, 0});
    RETURN_IF_ERROR(MatchExisting(pool, *existing, req, recorded, sizes));
    if (!existing->pending) {
      if (report) report->already_done = true;
      return *existing;
    }
    if (has_source) {
      spdlog::info("create: resuming the interrupted copy into {} ({})", existing->id, req.name);
      return internal::ResumeHostCopy(pool, src_pool, *existing, req.source, options.clone, report);
    }
    // An empty volume is never pending: this is what an interrupted create left behind.
    spdlog::warn("create: removing half-made volume {} ({})", existing->id, req.name);
    RETURN_IF_ERROR(pool.delete_volume(existing->id));
  }
  if (!has_source) return pool.create_volume(req);
  return internal::CloneNew(pool, src_pool, req, recorded, same_pool, options.clone, report);
}

}  // namespace vdisk::clone
