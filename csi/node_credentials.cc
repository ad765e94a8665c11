#include "csi/node_credentials.h"

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "csi/ids.h"

namespace vdisk::csi {

namespace {
constexpr char kSuffix[] = ".json";
}

NodeCredentialStore::NodeCredentialStore(std::string dir) : dir_(std::move(dir)) {}

Status NodeCredentialStore::Init() { return fs::MakeDirs(dir_, 0700); }

StatusOr<std::string> NodeCredentialStore::PathFor(const std::string& volume_id) const {
  if (!DecodeVolumeId(volume_id).ok())
    return absl::InvalidArgumentError("no node credentials for a malformed volume id");
  return absl::StrCat(dir_, "/", volume_id, kSuffix);
}

Status NodeCredentialStore::Save(const std::string& volume_id, const blockdev::Params& secrets) {
  if (secrets.empty()) return Remove(volume_id);
  ASSIGN_OR_RETURN(std::string path, PathFor(volume_id));
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : secrets) j[k] = v;
  return fs::WriteFileAtomic(path, j.dump(), 0600);
}

StatusOr<blockdev::Params> NodeCredentialStore::Load(const std::string& volume_id) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(volume_id));
  auto text = fs::ReadFile(path);
  if (absl::IsNotFound(text.status())) return blockdev::Params();
  if (!text.ok()) return text.status();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return absl::DataLossError(absl::StrCat(path, ": unreadable node credentials"));
  blockdev::Params out;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return absl::DataLossError(absl::StrCat(path, ": unreadable node credentials"));
    out[k] = v.get<std::string>();
  }
  return out;
}

Status NodeCredentialStore::Remove(const std::string& volume_id) {
  ASSIGN_OR_RETURN(std::string path, PathFor(volume_id));
  RETURN_IF_ERROR(fs::RemoveAll(path));
  return fs::SyncDir(dir_);
}

void NodeCredentialStore::RemoveAllBut(const std::vector<std::string>& staged) {
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= strlen(kSuffix) || !name.ends_with(kSuffix)) continue;
    std::string id = name.substr(0, name.size() - strlen(kSuffix));
    if (DecodeVolumeId(id).ok() && std::find(staged.begin(), staged.end(), id) == staged.end())
      stale.push_back(id);
  }
  closedir(d);
  for (const auto& id : stale) (void)Remove(id);
}

}  // namespace vdisk::csi
