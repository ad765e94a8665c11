#include "csi/node_state.h"

#include <dirent.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "csi/ids.h"

namespace vdisk::csi {

using nlohmann::json;

namespace {

constexpr int kRecordVersion = 1;
constexpr char kSuffix[] = ".json";

json AttachmentToJson(const blockdev::Attachment& a) {
  return json{{"path", a.path}, {"is_block_device", a.is_block_device}};
}

blockdev::Attachment AttachmentFromJson(const json& j) {
  blockdev::Attachment a;
  a.path = j.at("path").get<std::string>();
  a.is_block_device = j.at("is_block_device").get<bool>();
  return a;
}

int AccessToInt(blockdev::AccessMode m) { return static_cast<int>(m); }

StatusOr<blockdev::AccessMode> AccessFromJson(const json& j) {
  const int access = j.get<int>();
  if (access < 0 || access > static_cast<int>(blockdev::AccessMode::kSingleNodeMultiWriter))
    return absl::DataLossError("node record: unknown access mode");
  return static_cast<blockdev::AccessMode>(access);
}

}  // namespace

PublishRecord* VolumeRecord::FindPublish(const std::string& target_path) {
  for (auto& p : publishes)
    if (p.target_path == target_path) return &p;
  return nullptr;
}

std::string FlagsFingerprint(std::vector<std::string> flags) {
  if (flags.empty()) return "";
  std::sort(flags.begin(), flags.end());
  std::string flat;
  for (const auto& f : flags) absl::StrAppend(&flat, f, std::string(1, '\0'));
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(flat.data()), flat.size(), md);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), sizeof md));
}

NodeStateStore::NodeStateStore(std::string dir) : dir_(std::move(dir)) {}

Status NodeStateStore::Init() {
  RETURN_IF_ERROR(fs::MakeDirs(dir_, 0700));
  return fs::MakeDirs(dir_ + "/volumes", 0700);
}

StatusOr<std::string> NodeStateStore::PathFor(const std::string& volume_id) const {
  if (!DecodeVolumeId(volume_id).ok())
    return absl::InvalidArgumentError(absl::StrCat("no node record for malformed volume id"));
  return absl::StrCat(dir_, "/volumes/", volume_id, kSuffix);
}

std::string NodeStateStore::Serialize(const VolumeRecord& r) {
  json pubs = json::array();
  for (const auto& p : r.publishes) {
    json jp{{"target_path", p.target_path}, {"readonly", p.readonly}, {"flags", p.flags_fingerprint}};
    if (p.access) jp["access"] = AccessToInt(*p.access);
    if (p.own_attachment) jp["own_attachment"] = AttachmentToJson(*p.own_attachment);
    if (!p.vhost_dir.empty()) jp["vhost_dir"] = p.vhost_dir;
    pubs.push_back(std::move(jp));
  }
  json j{{"version", kRecordVersion},
         {"volume_id", r.volume_id},
         {"staging_path", r.staging_path},
         {"mode", std::string(blockdev::ToString(r.mode))},
         {"access", AccessToInt(r.access)},
         {"readonly", r.readonly},
         {"flags", r.flags_fingerprint},
         {"attachment", AttachmentToJson(r.attachment)},
         {"publishes", std::move(pubs)}};
  if (r.vhost_queues > 0) j["vhost_queues"] = r.vhost_queues;
  return j.dump(2) + "\n";
}

StatusOr<VolumeRecord> NodeStateStore::Parse(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("node record is not valid JSON");
  try {
    if (j.at("version").get<int>() != kRecordVersion)
      return absl::DataLossError(absl::StrCat("node record version ", j.at("version").dump(), " unknown"));
    VolumeRecord r;
    r.volume_id = j.at("volume_id").get<std::string>();
    r.staging_path = j.at("staging_path").get<std::string>();
    std::string mode = j.at("mode").get<std::string>();
    if (mode == "block") r.mode = blockdev::VolumeMode::kBlock;
    else if (mode == "filesystem") r.mode = blockdev::VolumeMode::kFilesystem;
    else return absl::DataLossError(absl::StrCat("node record: unknown mode '", mode, "'"));
    ASSIGN_OR_RETURN(r.access, AccessFromJson(j.at("access")));
    r.readonly = j.at("readonly").get<bool>();
    r.flags_fingerprint = j.value("flags", "");
    r.attachment = AttachmentFromJson(j.at("attachment"));
    r.vhost_queues = j.value("vhost_queues", 0u);
    for (const auto& jp : j.at("publishes")) {
      PublishRecord p;
      p.target_path = jp.at("target_path").get<std::string>();
      p.readonly = jp.at("readonly").get<bool>();
      p.flags_fingerprint = jp.value("flags", "");
      if (jp.contains("access")) {
        ASSIGN_OR_RETURN(p.access, AccessFromJson(jp.at("access")));
      }
      if (jp.contains("own_attachment")) p.own_attachment = AttachmentFromJson(jp.at("own_attachment"));
      p.vhost_dir = jp.value("vhost_dir", "");
      r.publishes.push_back(std::move(p));
    }
    return r;
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("node record: ", e.what()));
  }
}

StatusOr<std::optional<VolumeRecord>> NodeStateStore::Load(const std::string& volume_id) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(volume_id));
  auto text = fs::ReadFile(path);
  if (absl::IsNotFound(text.status())) return std::optional<VolumeRecord>();
  if (!text.ok()) return text.status();
  auto rec = Parse(*text);
  if (!rec.ok()) return Annotate(rec.status(), path);
  if (rec->volume_id != volume_id)
    return absl::DataLossError(absl::StrCat(path, ": record names volume ", rec->volume_id));
  return std::optional<VolumeRecord>(std::move(*rec));
}

Status NodeStateStore::Save(const VolumeRecord& record) {
  ASSIGN_OR_RETURN(std::string path, PathFor(record.volume_id));
  return fs::WriteFileAtomic(path, Serialize(record), 0600);
}

Status NodeStateStore::Remove(const std::string& volume_id) {
  ASSIGN_OR_RETURN(std::string path, PathFor(volume_id));
  RETURN_IF_ERROR(fs::RemoveAll(path));
  return fs::SyncDir(dir_ + "/volumes");
}

StatusOr<std::vector<VolumeRecord>> NodeStateStore::LoadAll() const {
  std::vector<std::string> ids;
  std::string vdir = dir_ + "/volumes";
  DIR* d = opendir(vdir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return std::vector<VolumeRecord>();
    return LastErrnoStatus(absl::StrCat("opendir ", vdir));
  }
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > strlen(kSuffix) && name.ends_with(kSuffix))
      ids.push_back(name.substr(0, name.size() - strlen(kSuffix)));
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  std::vector<VolumeRecord> out;
  for (const auto& id : ids) {
    if (!DecodeVolumeId(id).ok()) continue;  // temp files and strays
    ASSIGN_OR_RETURN(auto rec, Load(id));
    if (rec) out.push_back(std::move(*rec));
  }
  return out;
}

}  // namespace vdisk::csi
