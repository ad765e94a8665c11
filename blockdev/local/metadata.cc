#include "blockdev/local/metadata.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::local {

namespace {
// Lists "<id>.json" entries of a directory (skipping temp files of WriteFileAtomic).
StatusOr<std::vector<std::string>> ListIds(const std::string& dir) {
  std::vector<std::string> ids;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return ids;
    return LastErrnoStatus(absl::StrCat("opendir ", dir));
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (!n.ends_with(".json")) continue;
    std::string id = n.substr(0, n.size() - 5);
    if (ValidateId(id).ok()) ids.push_back(std::move(id));
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status RemoveFileDurably(const std::string& path, const std::string& dir) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status();
    return LastErrnoStatus(absl::StrCat("unlink ", path));
  }
  return fs::SyncDir(dir);
}
}  // namespace

StatusOr<Volume> MetaStore::ReadVolume(const std::string& id) const {
  auto text = fs::ReadFile(layout_.volume_meta(id));
  if (!text.ok()) {
    if (absl::IsNotFound(text.status()))
      return absl::NotFoundError(absl::StrCat("no volume with id '", id, "'"));
    return text.status();
  }
  auto v = DecodeVolume(*text);
  if (!v.ok()) return absl::DataLossError(absl::StrCat("volume ", id, ": ", v.status().message()));
  if (v->id != id) return absl::DataLossError(absl::StrCat("volume record ", id, " names id ", v->id));
  return v;
}

StatusOr<Snapshot> MetaStore::ReadSnapshot(const std::string& id) const {
  auto text = fs::ReadFile(layout_.snapshot_meta(id));
  if (!text.ok()) {
    if (absl::IsNotFound(text.status()))
      return absl::NotFoundError(absl::StrCat("no snapshot with id '", id, "'"));
    return text.status();
  }
  auto s = DecodeSnapshot(*text);
  if (!s.ok())
    return absl::DataLossError(absl::StrCat("snapshot ", id, ": ", s.status().message()));
  if (s->id != id)
    return absl::DataLossError(absl::StrCat("snapshot record ", id, " names id ", s->id));
  return s;
}

StatusOr<std::vector<Volume>> MetaStore::ListVolumes() const {
  ASSIGN_OR_RETURN(auto ids, ListIds(layout_.volume_meta_dir()));
  std::vector<Volume> out;
  for (const auto& id : ids) {
    auto v = ReadVolume(id);
    if (v.ok()) out.push_back(std::move(*v));
    else if (!absl::IsNotFound(v.status()))  // NOT_FOUND: deleted while listing
      spdlog::error("local pool {}: skipping volume record: {}", layout_.root(),
                    v.status().ToString());
  }
  return out;
}

StatusOr<std::vector<Snapshot>> MetaStore::ListSnapshots() const {
  ASSIGN_OR_RETURN(auto ids, ListIds(layout_.snapshot_meta_dir()));
  std::vector<Snapshot> out;
  for (const auto& id : ids) {
    auto s = ReadSnapshot(id);
    if (s.ok()) out.push_back(std::move(*s));
    else if (!absl::IsNotFound(s.status()))
      spdlog::error("local pool {}: skipping snapshot record: {}", layout_.root(),
                    s.status().ToString());
  }
  return out;
}

StatusOr<std::vector<std::string>> MetaStore::VolumeIds() const {
  return ListIds(layout_.volume_meta_dir());
}

StatusOr<std::vector<std::string>> MetaStore::SnapshotIds() const {
  return ListIds(layout_.snapshot_meta_dir());
}

Status MetaStore::WriteVolume(const Volume& v) const {
  return fs::WriteFileAtomic(layout_.volume_meta(v.id), EncodeVolume(v), 0600);
}

Status MetaStore::WriteSnapshot(const Snapshot& s) const {
  return fs::WriteFileAtomic(layout_.snapshot_meta(s.id), EncodeSnapshot(s), 0600);
}

Status MetaStore::RemoveVolume(const std::string& id) const {
  return RemoveFileDurably(layout_.volume_meta(id), layout_.volume_meta_dir());
}

Status MetaStore::RemoveSnapshot(const std::string& id) const {
  return RemoveFileDurably(layout_.snapshot_meta(id), layout_.snapshot_meta_dir());
}

}  // namespace vdisk::blockdev::local
