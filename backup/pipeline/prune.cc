#include "backup/pipeline/prune.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace vdisk::backup {

namespace {
Status CheckCancel(const PruneOptions& o) {
  if (o.cancel && o.cancel->load()) return absl::CancelledError("prune cancelled");
  return Status();
}
}  // namespace

StatusOr<PruneResult> Prune(const Repository& repo, const PruneOptions& options) {
  if (options.remove.empty() && options.policy.empty())
    return absl::InvalidArgumentError(
        "no retention policy: give --keep-last/--keep-daily/--keep-weekly (or delete backups by id)");
  ASSIGN_OR_RETURN(auto lock, RepoLock::Acquire(repo.store(), RepoLock::Mode::kExclusive,
                                                options.remove.empty() ? "backup prune" : "backup delete",
                                                options.lock));
  PruneResult r;
  ASSIGN_OR_RETURN(auto ids, repo.ListBackups());

  // Which manifests go.
  std::set<std::string> remove;
  std::vector<Manifest> remaining;
  if (!options.remove.empty()) {
    for (const auto& ref : options.remove) {
      ASSIGN_OR_RETURN(std::string id, repo.ResolveBackupId(ref));
      remove.insert(id);
    }
  }
  std::vector<BackupRef> refs;
  std::map<std::string, Manifest> manifests;
  for (const auto& id : ids) {
    if (remove.contains(id)) continue;
    auto m = repo.ReadManifest(id);
    if (!m.ok())
      return Annotate(m.status(), absl::StrCat("cannot read backup ", id,
                                               "; refusing to prune (delete it explicitly or repair)"));
    refs.push_back({id, m->group, m->started_unix});
    manifests.emplace(id, std::move(*m));
  }
  if (options.remove.empty()) {
    std::vector<BackupRef> in_scope;
    for (const auto& b : refs)
      if (options.group.empty() || b.group == options.group) in_scope.push_back(b);
    std::set<std::string> keep = SelectKept(in_scope, options.policy);
    for (const auto& b : in_scope)
      if (!keep.contains(b.id)) remove.insert(b.id);
  }
  for (const auto& id : ids) (remove.contains(id) ? r.removed : r.kept).push_back(id);

  if (!options.dry_run)
    for (const auto& id : r.removed) {
      RETURN_IF_ERROR(CheckCancel(options));
      RETURN_IF_ERROR(repo.DeleteManifest(id));
    }
  if (!options.gc) return r;
  RETURN_IF_ERROR(CheckCancel(options));

  // Garbage collection: what the kept manifests reference.
  std::unordered_set<ChunkId, ChunkIdHash> referenced;
  for (const auto& [id, m] : manifests) {
    if (remove.contains(id)) continue;
    for (const auto& d : m.disks)
      for (const auto& c : d.chunks) referenced.insert(c.id);
  }
  ASSIGN_OR_RETURN(LoadedIndex loaded, repo.LoadIndex(/*adopt_unindexed=*/true));
  std::vector<PackRecord> keep_packs;
  std::vector<std::pair<std::string, uint64_t>> delete_packs;
  // Rebuild per-pack records from the index (entries grouped by pack).
  std::vector<PackRecord> packs(loaded.index.packs().size());
  for (size_t p = 0; p < packs.size(); ++p) {
    packs[p].name = loaded.index.packs()[p].name;
    packs[p].size = loaded.index.packs()[p].size;
  }
  for (const auto& [cid, loc] : loaded.index.chunks())
    packs[loc.pack].entries.push_back({cid, loc.offset, loc.length, loc.raw_length});
  for (auto& p : packs) {
    std::sort(p.entries.begin(), p.entries.end(),
              [](const PackEntry& a, const PackEntry& b) { return a.offset < b.offset; });
    uint64_t live = 0, dead = 0;
    for (const auto& e : p.entries) (referenced.contains(e.id) ? live : dead) += e.length;
    if (live == 0) {
      delete_packs.push_back({p.name, p.size});
      r.bytes_freed += p.size;
    } else {
      r.bytes_kept += p.size;
      r.bytes_unreferenced_in_kept_packs += dead;
      keep_packs.push_back(std::move(p));
    }
  }
  r.packs_deleted = delete_packs.size();
  r.packs_kept = keep_packs.size();
  if (options.dry_run) return r;

  const bool rewrite = !delete_packs.empty() || loaded.index_objects.size() > 1 ||
                       !loaded.adopted.empty();
  RETURN_IF_ERROR(CheckCancel(options));
  if (rewrite) {
    std::string new_index;
    if (!keep_packs.empty()) {
      ASSIGN_OR_RETURN(new_index, repo.WriteIndex(keep_packs));
    }
    for (const auto& key : loaded.index_objects) {
      if (key == new_index) continue;
      RETURN_IF_ERROR(repo.store().Delete(key));
      ++r.indexes_deleted;
    }
    for (const auto& [name, size] : delete_packs) {
      RETURN_IF_ERROR(CheckCancel(options));
      RETURN_IF_ERROR(repo.store().Delete(PackKey(name)));
    }
  }
  // Debris: packs without a readable trailer that no index lists cannot be used by anyone.
  for (const auto& key : loaded.unreadable_packs) RETURN_IF_ERROR(repo.store().Delete(key));
  auto aborted = repo.store().AbortStaleUploads(kPacksPrefix, std::chrono::seconds(0));
  if (aborted.ok()) r.uploads_aborted = *aborted;
  else spdlog::warn("aborting stale uploads: {}", aborted.status().ToString());
  auto stale = lock->RemoveStaleLocks();
  if (stale.ok()) r.stale_locks_removed = *stale;
  return r;
}

}  // namespace vdisk::backup
