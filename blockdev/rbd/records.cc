#include "blockdev/rbd/records.h"

#include <cctype>
#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "blockdev/rbd/rbd_options.h"
#include "nlohmann/json.hpp"

namespace vdisk::blockdev::rbd {

using nlohmann::json;

namespace {

const char* StateName(RecordState s) {
  switch (s) {
    case RecordState::kCreating: return "creating";
    case RecordState::kPending: return "pending";
    case RecordState::kReady: return "ready";
    case RecordState::kDeleted: return "deleted";
    case RecordState::kDeleting: return "deleting";
  }
  return "creating";
}

StatusOr<RecordState> ParseState(const std::string& s) {
  if (s == "creating") return RecordState::kCreating;
  if (s == "pending") return RecordState::kPending;
  if (s == "ready") return RecordState::kReady;
  if (s == "deleted") return RecordState::kDeleted;
  if (s == "deleting") return RecordState::kDeleting;
  return absl::DataLossError(absl::StrCat("journal record: unknown state '", s, "'"));
}

const char* SourceKind(VolumeSource::Kind k) {
  switch (k) {
    case VolumeSource::Kind::kNone: return "none";
    case VolumeSource::Kind::kSnapshot: return "snapshot";
    case VolumeSource::Kind::kVolume: return "volume";
  }
  return "none";
}

std::string RandomHex16() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          static_cast<uint64_t>(NowUnixNs())};
  static const char* digits = "0123456789abcdef";
  uint64_t v = rng();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = digits[v & 15];
  return out;
}

bool IsNamePart(const std::string& s, const std::string& prefix) {
  if (!s.starts_with(prefix) || s.size() != prefix.size() + 16) return false;
  for (size_t i = prefix.size(); i < s.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(s[i])) || std::isupper(static_cast<unsigned char>(s[i])))
      return false;
  return true;
}

}  // namespace

int64_t NowUnixNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ToJson(const VolumeRecord& r) {
  json j;
  j["id"] = r.id;
  j["name"] = r.name;
  j["rbd_pool"] = r.rbd_pool;
  j["image"] = r.image;
  j["image_id"] = r.image_id;
  j["data_pool"] = r.data_pool;
  j["features"] = r.features;
  j["size_bytes"] = r.size_bytes;
  j["mode"] = std::string(ToString(r.mode));
  std::vector<int> modes;
  for (auto m : r.access_modes) modes.push_back(static_cast<int>(m));
  j["access_modes"] = modes;
  j["params"] = r.params;
  if (!r.mutable_params.empty()) j["mutable_params"] = r.mutable_params;
  j["source_kind"] = SourceKind(r.source.kind);
  j["source_id"] = r.source.id;
  j["state"] = StateName(r.state);
  j["created_unix_ns"] = r.created_unix_ns;
  j["updated_unix_ns"] = r.updated_unix_ns;
  j["owner"] = r.owner;
  j["flatten_pending"] = r.flatten_pending;
  if (r.chain_depth >= 0) j["chain_depth"] = r.chain_depth;
  j["clone_snap"] = r.clone_snap;
  j["clone_src_pool"] = r.clone_src_pool;
  j["clone_src_image_id"] = r.clone_src_image_id;
  return j.dump();
}

std::string ToJson(const SnapshotRecord& r) {
  json j;
  j["id"] = r.id;
  j["name"] = r.name;
  j["source_volume_id"] = r.source_volume_id;
  j["rbd_pool"] = r.rbd_pool;
  j["image"] = r.image;
  j["image_id"] = r.image_id;
  j["snap"] = r.snap;
  j["size_bytes"] = r.size_bytes;
  j["state"] = StateName(r.state);
  j["created_unix_ns"] = r.created_unix_ns;
  j["updated_unix_ns"] = r.updated_unix_ns;
  j["owner"] = r.owner;
  if (r.chain_depth >= 0) j["chain_depth"] = r.chain_depth;
  return j.dump();
}

StatusOr<VolumeRecord> VolumeRecordFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("journal: volume record is not a JSON object");
  VolumeRecord r;
  try {
    r.id = j.value("id", "");
    r.name = j.value("name", "");
    r.rbd_pool = j.value("rbd_pool", "");
    r.image = j.value("image", "");
    r.image_id = j.value("image_id", "");
    r.data_pool = j.value("data_pool", "");
    r.features = j.value("features", uint64_t{0});
    r.size_bytes = j.value("size_bytes", uint64_t{0});
    r.mode = j.value("mode", "block") == "filesystem" ? VolumeMode::kFilesystem : VolumeMode::kBlock;
    for (int m : j.value("access_modes", std::vector<int>{}))
      if (m >= 0 && m <= static_cast<int>(AccessMode::kSingleNodeMultiWriter))
        r.access_modes.push_back(static_cast<AccessMode>(m));
    r.params = j.value("params", Params{});
    r.mutable_params = j.value("mutable_params", Params{});
    std::string kind = j.value("source_kind", "none");
    r.source.kind = kind == "snapshot" ? VolumeSource::Kind::kSnapshot
                    : kind == "volume" ? VolumeSource::Kind::kVolume
                                       : VolumeSource::Kind::kNone;
    r.source.id = j.value("source_id", "");
    ASSIGN_OR_RETURN(r.state, ParseState(j.value("state", "")));
    r.created_unix_ns = j.value("created_unix_ns", int64_t{0});
    r.updated_unix_ns = j.value("updated_unix_ns", int64_t{0});
    r.owner = j.value("owner", "");
    r.flatten_pending = j.value("flatten_pending", false);
    r.chain_depth = j.value("chain_depth", -1);
    r.clone_snap = j.value("clone_snap", "");
    r.clone_src_pool = j.value("clone_src_pool", "");
    r.clone_src_image_id = j.value("clone_src_image_id", "");
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("journal: bad volume record: ", e.what()));
  }
  if (r.id.empty() || r.rbd_pool.empty() || r.image.empty())
    return absl::DataLossError("journal: volume record without id / pool / image");
  return r;
}

StatusOr<SnapshotRecord> SnapshotRecordFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("journal: snapshot record is not a JSON object");
  SnapshotRecord r;
  try {
    r.id = j.value("id", "");
    r.name = j.value("name", "");
    r.source_volume_id = j.value("source_volume_id", "");
    r.rbd_pool = j.value("rbd_pool", "");
    r.image = j.value("image", "");
    r.image_id = j.value("image_id", "");
    r.snap = j.value("snap", "");
    r.size_bytes = j.value("size_bytes", uint64_t{0});
    ASSIGN_OR_RETURN(r.state, ParseState(j.value("state", "")));
    r.created_unix_ns = j.value("created_unix_ns", int64_t{0});
    r.updated_unix_ns = j.value("updated_unix_ns", int64_t{0});
    r.owner = j.value("owner", "");
    r.chain_depth = j.value("chain_depth", -1);
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("journal: bad snapshot record: ", e.what()));
  }
  if (r.id.empty() || r.rbd_pool.empty() || r.image.empty() || r.snap.empty())
    return absl::DataLossError("journal: snapshot record without id / pool / image / snap");
  return r;
}

std::string VolumeKey(const std::string& id) { return "v/" + id; }

std::string VolumeNameKey(const std::string& name) { return "vn/" + name; }
std::string SnapshotKey(const std::string& id) { return "s/" + id; }
std::string SnapshotNameKey(const std::string& name) { return "sn/" + name; }

std::string MakeVolumeId(const std::string& rbd_pool, const std::string& image) {
  return absl::StrCat(rbd_pool, ".", image);
}

std::string MakeSnapshotId(const std::string& rbd_pool, const std::string& image,
                           const std::string& snap) {
  return absl::StrCat(rbd_pool, ".", image, ".", snap);
}

StatusOr<VolumeRef> ParseVolumeId(const std::string& id) {
  std::vector<std::string> parts = absl::StrSplit(id, '.');
  if (parts.size() != 2 || !IsIdSafePoolName(parts[0]) || !IsNamePart(parts[1], "vdisk-"))
    return absl::NotFoundError(absl::StrCat("no rbd volume with id '", id, "'"));
  return VolumeRef{parts[0], parts[1]};
}

StatusOr<SnapshotRef> ParseSnapshotId(const std::string& id) {
  std::vector<std::string> parts = absl::StrSplit(id, '.');
  if (parts.size() != 3 || !IsIdSafePoolName(parts[0]) || !IsNamePart(parts[1], "vdisk-") ||
      !IsNamePart(parts[2], "snap-"))
    return absl::NotFoundError(absl::StrCat("no rbd snapshot with id '", id, "'"));
  return SnapshotRef{parts[0], parts[1], parts[2]};
}

std::string NewImageName() { return "vdisk-" + RandomHex16(); }
std::string NewSnapName() { return "snap-" + RandomHex16(); }
std::string NewCloneSnapName() { return "clone-" + RandomHex16(); }


}  // namespace vdisk::blockdev::rbd
