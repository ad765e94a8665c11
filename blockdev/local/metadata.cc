#include "blockdev/local/metadata.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::local {

namespace {
using nlohmann::json;

constexpr AccessMode kAllAccessModes[] = {
    AccessMode::kSingleNodeWriter,       AccessMode::kSingleNodeReaderOnly,
    AccessMode::kMultiNodeReaderOnly,    AccessMode::kMultiNodeSingleWriter,
    AccessMode::kMultiNodeMultiWriter,   AccessMode::kSingleNodeSingleWriter,
    AccessMode::kSingleNodeMultiWriter,
};

Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("metadata: ", what));
}

// Typed field readers that never throw.
StatusOr<std::string> GetString(const json& j, const char* key, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Bad(absl::StrCat("missing '", key, "'"));
    return std::string();
  }
  if (!it->is_string()) return Bad(absl::StrCat("'", key, "' is not a string"));
  return it->get<std::string>();
}

StatusOr<uint64_t> GetU64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned())
    return Bad(absl::StrCat("'", key, "' missing or not an unsigned number"));
  return it->get<uint64_t>();
}

StatusOr<int64_t> GetI64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer())
    return Bad(absl::StrCat("'", key, "' missing or not an integer"));
  return it->get<int64_t>();
}

StatusOr<bool> GetBool(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  if (it == j.end()) return dflt;
  if (!it->is_boolean()) return Bad(absl::StrCat("'", key, "' is not a boolean"));
  return it->get<bool>();
}

StatusOr<Params> GetParams(const json& j, const char* key) {
  Params out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_object()) return Bad(absl::StrCat("'", key, "' is not an object"));
  for (auto kv = it->begin(); kv != it->end(); ++kv) {
    if (!kv.value().is_string()) return Bad(absl::StrCat("'", key, ".", kv.key(), "' not a string"));
    out[kv.key()] = kv.value().get<std::string>();
  }
  return out;
}

StatusOr<json> Parse(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("not a JSON object");
  auto fmt = j.find("format");
  if (fmt == j.end() || !fmt->is_number_integer() || fmt->get<int>() != kLayoutFormat)
    return Bad(absl::StrCat("unsupported format (want ", kLayoutFormat, ")"));
  return j;
}

std::string SourceKindName(VolumeSource::Kind k) {
  switch (k) {
    case VolumeSource::Kind::kNone: return "none";
    case VolumeSource::Kind::kSnapshot: return "snapshot";
    case VolumeSource::Kind::kVolume: return "volume";
  }
  return "none";
}

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

StatusOr<VolumeMode> ParseVolumeMode(const std::string& s) {
  if (s == "block") return VolumeMode::kBlock;
  if (s == "filesystem") return VolumeMode::kFilesystem;
  return absl::InvalidArgumentError(absl::StrCat("unknown volume mode '", s, "'"));
}

StatusOr<AccessMode> ParseAccessMode(const std::string& s) {
  for (AccessMode m : kAllAccessModes)
    if (ToString(m) == s) return m;
  return absl::InvalidArgumentError(absl::StrCat("unknown access mode '", s, "'"));
}

std::string EncodeVolume(const Volume& v) {
  json j;
  j["format"] = kLayoutFormat;
  j["id"] = v.id;
  j["name"] = v.name;
  j["size_bytes"] = v.size_bytes;
  j["mode"] = std::string(ToString(v.mode));
  json modes = json::array();
  for (AccessMode m : v.access_modes) modes.push_back(std::string(ToString(m)));
  j["access_modes"] = modes;
  j["params"] = v.params;
  j["source"] = {{"kind", SourceKindName(v.source.kind)}, {"id", v.source.id}};
  j["pending"] = v.pending;
  j["created_unix_ns"] = v.created_unix_ns;
  j["context"] = v.context;
  return j.dump(2) + "\n";
}

StatusOr<Volume> DecodeVolume(const std::string& text) {
  ASSIGN_OR_RETURN(json j, Parse(text));
  Volume v;
  ASSIGN_OR_RETURN(v.id, GetString(j, "id"));
  RETURN_IF_ERROR(ValidateId(v.id));
  ASSIGN_OR_RETURN(v.name, GetString(j, "name"));
  ASSIGN_OR_RETURN(v.size_bytes, GetU64(j, "size_bytes"));
  ASSIGN_OR_RETURN(std::string mode, GetString(j, "mode"));
  ASSIGN_OR_RETURN(v.mode, ParseVolumeMode(mode));
  auto am = j.find("access_modes");
  if (am != j.end()) {
    if (!am->is_array()) return Bad("'access_modes' is not an array");
    for (const auto& e : *am) {
      if (!e.is_string()) return Bad("access mode is not a string");
      ASSIGN_OR_RETURN(AccessMode m, ParseAccessMode(e.get<std::string>()));
      v.access_modes.push_back(m);
    }
  }
  ASSIGN_OR_RETURN(v.params, GetParams(j, "params"));
  ASSIGN_OR_RETURN(v.context, GetParams(j, "context"));
  auto src = j.find("source");
  if (src != j.end()) {
    if (!src->is_object()) return Bad("'source' is not an object");
    ASSIGN_OR_RETURN(std::string kind, GetString(*src, "kind"));
    ASSIGN_OR_RETURN(v.source.id, GetString(*src, "id", false));
    if (kind == "none") v.source.kind = VolumeSource::Kind::kNone;
    else if (kind == "snapshot") v.source.kind = VolumeSource::Kind::kSnapshot;
    else if (kind == "volume") v.source.kind = VolumeSource::Kind::kVolume;
    else return Bad(absl::StrCat("unknown source kind '", kind, "'"));
  }
  ASSIGN_OR_RETURN(v.pending, GetBool(j, "pending", false));
  ASSIGN_OR_RETURN(v.created_unix_ns, GetI64(j, "created_unix_ns"));
  return v;
}

std::string EncodeSnapshot(const Snapshot& s) {
  json j;
  j["format"] = kLayoutFormat;
  j["id"] = s.id;
  j["name"] = s.name;
  j["source_volume_id"] = s.source_volume_id;
  j["size_bytes"] = s.size_bytes;
  j["created_unix_ns"] = s.created_unix_ns;
  j["ready"] = s.ready;
  return j.dump(2) + "\n";
}

StatusOr<Snapshot> DecodeSnapshot(const std::string& text) {
  ASSIGN_OR_RETURN(json j, Parse(text));
  Snapshot s;
  ASSIGN_OR_RETURN(s.id, GetString(j, "id"));
  RETURN_IF_ERROR(ValidateId(s.id));
  ASSIGN_OR_RETURN(s.name, GetString(j, "name"));
  ASSIGN_OR_RETURN(s.source_volume_id, GetString(j, "source_volume_id"));
  ASSIGN_OR_RETURN(s.size_bytes, GetU64(j, "size_bytes"));
  ASSIGN_OR_RETURN(s.created_unix_ns, GetI64(j, "created_unix_ns"));
  ASSIGN_OR_RETURN(s.ready, GetBool(j, "ready", true));
  return s;
}

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
