// LocalPool: lookups by name through the name index (name_index.h), and the index's check at open.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "blockdev/local/local_pool_impl.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::local {

LocalPool::NamedKind LocalPool::Kind(char kind) const {
  if (kind == 'v')
    return {"volume", &volume_names_, [this] { return meta_.VolumeIds(); },
            [this](const std::string& id) -> StatusOr<std::pair<std::string, int64_t>> {
              ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
              return std::make_pair(v.name, v.created_unix_ns);
            },
            &unnamed_volumes_};
  return {"snapshot", &snapshot_names_, [this] { return meta_.SnapshotIds(); },
          [this](const std::string& id) -> StatusOr<std::pair<std::string, int64_t>> {
            ASSIGN_OR_RETURN(Snapshot s, meta_.ReadSnapshot(id));
            return std::make_pair(s.name, s.created_unix_ns);
          },
          &unnamed_snapshots_};
}

StatusOr<std::optional<std::string>> LocalPool::ResolveName(char kind,
                                                            const std::string& name) const {
  const NamedKind k = Kind(kind);
  ASSIGN_OR_RETURN(std::optional<std::string> id, k.index->Lookup(name));
  if (id) {
    if (!ValidateId(*id).ok())
      return absl::DataLossError(absl::StrCat("name index of ", layout_.root(), ": '", name,
                                              "' maps to a malformed id"));
    auto rec = k.read(*id);
    if (rec.ok() && rec->first == name) return id;
    if (!rec.ok() && !absl::IsNotFound(rec.status()))
      return absl::DataLossError(absl::StrCat(
          k.what, " '", name, "' (id ", *id, ") has an unreadable record: ",
          std::string(rec.status().message()), "; repair or remove it before using this name"));
    // NOT_FOUND: a create interrupted between the entry and its record, or a deletion between
    // the record and its entry. The name is free.
  }
  // Not indexed. Free, unless the pool holds unreadable records whose names are unknown.
  std::lock_guard lock(names_mu_);
  std::vector<std::string> still_bad;
  for (auto it = k.unnamed->begin(); it != k.unnamed->end();) {
    auto rec = k.read(*it);
    if (absl::IsNotFound(rec.status())) {  // removed by the operator
      it = k.unnamed->erase(it);
    } else if (rec.ok()) {  // repaired: index it (idempotent; harmless without the pool lock)
      (void)k.index->Put(rec->first, *it);
      if (rec->first == name) {
        std::string found = *it;
        k.unnamed->erase(it);
        return std::optional<std::string>(found);
      }
      it = k.unnamed->erase(it);
    } else {
      still_bad.push_back(*it);
      ++it;
    }
  }
  if (!still_bad.empty())
    return absl::DataLossError(absl::StrCat(
        "local pool ", layout_.root(), " holds unreadable ", k.what, " record(s) ",
        absl::StrJoin(still_bad, ", "), " whose name is unknown, so whether '", name,
        "' exists cannot be told; repair or remove them (meta/", k.what, "s/<id>.json)"));
  return std::optional<std::string>();
}

Status LocalPool::CheckNameIndex(char kind) const {
  const NamedKind k = Kind(kind);
  ASSIGN_OR_RETURN(auto entries, k.index->ReadAll());  // name -> id
  ASSIGN_OR_RETURN(auto ids, k.ids());
  std::map<std::string, std::pair<std::string, int64_t>> readable;  // id -> name, created
  std::set<std::string> unreadable;
  for (const auto& id : ids) {
    auto rec = k.read(id);
    if (rec.ok()) {
      readable[id] = *rec;
    } else if (!absl::IsNotFound(rec.status())) {
      unreadable.insert(id);
    }
  }
  // Entries whose record is gone: free names.
  std::set<std::string> named_ids;
  for (const auto& [name, id] : entries) {
    if (readable.contains(id) || unreadable.contains(id)) {
      named_ids.insert(id);
      continue;
    }
    RETURN_IF_ERROR(k.index->Remove(name, id));
  }
  // Records without their entry (an index lost, or written by a vdisk without one).
  for (const auto& [id, rec] : readable) {
    const auto& [name, created] = rec;
    auto it = entries.find(name);
    if (it != entries.end() && it->second == id) continue;
    if (it != entries.end()) {
      auto other = readable.find(it->second);
      if (other != readable.end() && other->second.first == name) {
        // Two committed objects with one name (made before the index existed).
        const bool keep_other = other->second.second <= created;
        spdlog::error("local pool {}: {}s {} and {} are both named '{}'; the name resolves to "
                      "the older, {}; delete the other", layout_.root(), k.what, id, it->second,
                      name, keep_other ? it->second : id);
        if (keep_other) continue;
      }
    }
    spdlog::warn("local pool {}: indexing {} {} '{}'", layout_.root(), k.what, id, name);
    RETURN_IF_ERROR(k.index->Put(name, id));
    entries[name] = id;
    named_ids.insert(id);
  }
  std::lock_guard lock(names_mu_);
  k.unnamed->clear();
  for (const auto& id : unreadable) {
    if (named_ids.contains(id)) {
      spdlog::error("local pool {}: {} record {} is unreadable; requests for its name fail with "
                    "DATA_LOSS until it is repaired or removed", layout_.root(), k.what, id);
      continue;
    }
    spdlog::error("local pool {}: {} record {} is unreadable and its name is unknown: creating "
                  "or looking up {}s by name fails with DATA_LOSS until it is repaired or removed",
                  layout_.root(), k.what, id, k.what);
    k.unnamed->insert(id);
  }
  return Status();
}

StatusOr<std::optional<Volume>> LocalPool::FindVolumeByNameLocked(const std::string& name) const {
  ASSIGN_OR_RETURN(std::optional<std::string> id, ResolveName('v', name));
  if (!id) return std::optional<Volume>();
  auto v = meta_.ReadVolume(*id);
  if (absl::IsNotFound(v.status())) return std::optional<Volume>();  // deleted meanwhile
  if (!v.ok()) return v.status();
  return std::optional<Volume>(std::move(*v));
}

StatusOr<std::optional<Snapshot>> LocalPool::FindSnapshotByNameLocked(
    const std::string& name) const {
  ASSIGN_OR_RETURN(std::optional<std::string> id, ResolveName('s', name));
  if (!id) return std::optional<Snapshot>();
  auto s = meta_.ReadSnapshot(*id);
  if (absl::IsNotFound(s.status())) return std::optional<Snapshot>();
  if (!s.ok()) return s.status();
  return std::optional<Snapshot>(std::move(*s));
}

}  // namespace vdisk::blockdev::local
