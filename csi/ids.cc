#include "csi/ids.h"

#include "absl/strings/str_cat.h"

namespace vdisk::csi {

namespace {

constexpr char kVersion[] = "v1";

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

const char* KindToken(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kVolume: return "vol";
    case ObjectKind::kSnapshot: return "snap";
    case ObjectKind::kGroupSnapshot: return "grp";
  }
  return "?";
}

const char* KindNoun(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kVolume: return "volume";
    case ObjectKind::kSnapshot: return "snapshot";
    case ObjectKind::kGroupSnapshot: return "group snapshot";
  }
  return "object";
}

// Quotes a user-supplied id for an error message without letting it flood the log.
std::string Quoted(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 160)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (s.size() > 160) out += "...";
  return absl::StrCat("'", out, "'");
}

StatusOr<ObjectId> Decode(const std::string& id, ObjectKind want, const std::string& what) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is required"));
  auto not_ours = [&](const std::string& why) {
    return absl::NotFoundError(
        absl::StrCat(what, " ", Quoted(id), " does not name a vdisk ", KindNoun(want), " (", why, ")"));
  };
  if (id.size() > kMaxIdBytes) return not_ours("too long");
  size_t d1 = id.find('.');
  if (d1 == std::string::npos) return not_ours("no version");
  size_t d2 = id.find('.', d1 + 1);
  if (d2 == std::string::npos) return not_ours("no kind");
  size_t d3 = id.find('.', d2 + 1);
  if (d3 == std::string::npos) return not_ours("no pool");
  std::string version = id.substr(0, d1);
  std::string kind = id.substr(d1 + 1, d2 - d1 - 1);
  ObjectId out;
  out.kind = want;
  out.pool = id.substr(d2 + 1, d3 - d2 - 1);
  out.local_id = id.substr(d3 + 1);
  if (version != kVersion) return not_ours("unknown format version");
  if (kind != KindToken(want)) {
    for (ObjectKind other : {ObjectKind::kVolume, ObjectKind::kSnapshot, ObjectKind::kGroupSnapshot})
      if (kind == KindToken(other)) return not_ours(absl::StrCat("it is a ", KindNoun(other), " id"));
    return not_ours("unknown object kind");
  }
  if (!IsValidPoolName(out.pool)) return not_ours("bad pool name");
  if (!IsValidLocalId(out.local_id)) return not_ours("bad object id");
  return out;
}

}  // namespace

bool IsValidPoolName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name)
    if (!IsAlnum(c) && c != '-' && c != '_') return false;
  return true;
}

bool IsValidLocalId(const std::string& id) {
  if (id.empty() || id.front() == '.') return false;
  for (char c : id)
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

StatusOr<std::string> EncodeId(const ObjectId& id) {
  if (!IsValidPoolName(id.pool))
    return absl::InvalidArgumentError(absl::StrCat("pool name '", id.pool, "' cannot be encoded in an id"));
  if (!IsValidLocalId(id.local_id))
    return absl::InvalidArgumentError(
        absl::StrCat("pool-local id '", id.local_id, "' cannot be encoded in an id"));
  std::string out = absl::StrCat(kVersion, ".", KindToken(id.kind), ".", id.pool, ".", id.local_id);
  if (out.size() > kMaxIdBytes)
    return absl::OutOfRangeError(absl::StrCat("id '", out, "' exceeds ", kMaxIdBytes, " bytes"));
  return out;
}

StatusOr<std::string> EncodeVolumeId(const std::string& pool, const std::string& local_id) {
  return EncodeId({ObjectKind::kVolume, pool, local_id});
}

StatusOr<std::string> EncodeSnapshotId(const std::string& pool, const std::string& local_id) {
  return EncodeId({ObjectKind::kSnapshot, pool, local_id});
}

StatusOr<std::string> EncodeGroupSnapshotId(const std::string& pool, const std::string& local_id) {
  return EncodeId({ObjectKind::kGroupSnapshot, pool, local_id});
}

StatusOr<ObjectId> DecodeGroupSnapshotId(const std::string& id, const std::string& what) {
  return Decode(id, ObjectKind::kGroupSnapshot, what);
}

StatusOr<ObjectId> DecodeVolumeId(const std::string& id, const std::string& what) {
  return Decode(id, ObjectKind::kVolume, what);
}

StatusOr<ObjectId> DecodeSnapshotId(const std::string& id, const std::string& what) {
  return Decode(id, ObjectKind::kSnapshot, what);
}

}  // namespace vdisk::csi
