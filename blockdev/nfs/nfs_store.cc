#include "blockdev/nfs/nfs_store.h"

#include <openssl/sha.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "blockdev/record_files.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::nfs {

namespace {

constexpr const char* kVolumeMeta = "meta/volumes";
constexpr const char* kSnapshotMeta = "meta/snapshots";

std::string EncodeClaim(const Claim& c) {
  nlohmann::json j;
  j["format"] = kRecordFormat;
  j["id"] = c.id;
  j["name"] = c.name;
  j["owner"] = c.owner;
  return j.dump() + "\n";
}

StatusOr<Claim> DecodeClaim(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string() ||
      !j.contains("name") || !j["name"].is_string())
    return absl::DataLossError("unreadable name claim");
  Claim c;
  c.id = j["id"].get<std::string>();
  c.name = j["name"].get<std::string>();
  if (j.contains("owner") && j["owner"].is_string()) c.owner = j["owner"].get<std::string>();
  RETURN_IF_ERROR(ValidateId(c.id));
  return c;
}

}  // namespace

std::string ClaimKey(char kind, const std::string& name) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(), digest);
  return absl::StrCat(std::string(1, kind), "-",
                      absl::BytesToHexString(std::string(reinterpret_cast<char*>(digest), 16)));
}

std::string RandomToken() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrFormat("%016x", rng());
}

PoolStore::PoolStore(std::shared_ptr<Session> session, std::string dir)
    : session_(std::move(session)), dir_(std::move(dir)) {}

std::string PoolStore::path(const std::string& rel) const { return JoinPath(dir_, rel); }

std::string PoolStore::volume_image(const std::string& id) const {
  return JoinPath(volume_dir(id), kDiskImage);
}

std::string PoolStore::snapshot_image(const std::string& id) const {
  return JoinPath(snapshot_dir(id), kDiskImage);
}

std::string PoolStore::staging(char kind, const std::string& id) const {
  return path(absl::StrCat("staging/", std::string(1, kind), "-", id));
}

std::string PoolStore::claim_path(char kind, const std::string& name) const {
  return path("names/" + ClaimKey(kind, name));
}

std::vector<std::string> PoolStore::Directories() {
  return {"volumes", "snapshots", "meta", kVolumeMeta, kSnapshotMeta, "names", "staging"};
}

Status PoolStore::WriteAtomic(const std::string& dest, const std::string& data, int mode) {
  auto slash = dest.rfind('/');
  const std::string tmp = absl::StrCat(dest.substr(0, slash + 1), ".",
                                       dest.substr(slash + 1), ".tmp-", RandomToken());
  Status s = session_->WriteFile(tmp, data, mode);
  if (s.ok()) s = session_->Rename(tmp, dest);
  if (!s.ok()) (void)session_->Unlink(tmp);
  return s;
}

// --- records ---

StatusOr<Volume> PoolStore::ReadVolume(const std::string& id) {
  auto text = session_->ReadFile(path(absl::StrCat(kVolumeMeta, "/", id, ".json")));
  if (!text.ok()) {
    if (absl::IsNotFound(text.status()))
      return absl::NotFoundError(absl::StrCat("no volume with id '", id, "'"));
    return text.status();
  }
  auto v = DecodeVolume(*text);
  if (!v.ok()) return absl::DataLossError(absl::StrCat("volume ", id, ": ", v.status().message()));
  if (v->id != id)
    return absl::DataLossError(absl::StrCat("volume record ", id, " names id ", v->id));
  return v;
}

StatusOr<Snapshot> PoolStore::ReadSnapshot(const std::string& id) {
  auto text = session_->ReadFile(path(absl::StrCat(kSnapshotMeta, "/", id, ".json")));
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

StatusOr<std::vector<std::string>> PoolStore::ListIds(const std::string& rel_dir) {
  ASSIGN_OR_RETURN(auto names, session_->List(path(rel_dir)));
  std::vector<std::string> ids;
  for (const auto& n : names) {
    if (n.starts_with(".") || !n.ends_with(".json")) continue;  // temporaries
    std::string id = n.substr(0, n.size() - 5);
    if (ValidateId(id).ok()) ids.push_back(std::move(id));
  }
  return ids;
}

StatusOr<std::vector<Volume>> PoolStore::ListVolumes() {
  ASSIGN_OR_RETURN(auto ids, ListIds(kVolumeMeta));
  std::vector<Volume> out;
  for (const auto& id : ids) {
    auto v = ReadVolume(id);
    if (v.ok()) out.push_back(std::move(*v));
    else if (!absl::IsNotFound(v.status()))  // NOT_FOUND: deleted while listing
      spdlog::error("nfs pool {}: skipping volume record: {}", dir_, v.status().ToString());
  }
  return out;
}

StatusOr<std::vector<Snapshot>> PoolStore::ListSnapshots() {
  ASSIGN_OR_RETURN(auto ids, ListIds(kSnapshotMeta));
  std::vector<Snapshot> out;
  for (const auto& id : ids) {
    auto s = ReadSnapshot(id);
    if (s.ok()) out.push_back(std::move(*s));
    else if (!absl::IsNotFound(s.status()))
      spdlog::error("nfs pool {}: skipping snapshot record: {}", dir_, s.status().ToString());
  }
  return out;
}

Status PoolStore::WriteVolume(const Volume& v) {
  return WriteAtomic(path(absl::StrCat(kVolumeMeta, "/", v.id, ".json")), EncodeVolume(v));
}

Status PoolStore::WriteSnapshot(const Snapshot& s) {
  return WriteAtomic(path(absl::StrCat(kSnapshotMeta, "/", s.id, ".json")), EncodeSnapshot(s));
}

Status PoolStore::RemoveVolumeRecord(const std::string& id) {
  Status s = session_->Unlink(path(absl::StrCat(kVolumeMeta, "/", id, ".json")));
  return absl::IsNotFound(s) ? Status() : s;
}

Status PoolStore::RemoveSnapshotRecord(const std::string& id) {
  Status s = session_->Unlink(path(absl::StrCat(kSnapshotMeta, "/", id, ".json")));
  return absl::IsNotFound(s) ? Status() : s;
}

// --- claims ---

StatusOr<bool> PoolStore::TryClaim(char kind, const std::string& name, const std::string& id,
                                   const std::string& owner) {
  const std::string dest = claim_path(kind, name);
  const std::string tmp = path(absl::StrCat("names/.", ClaimKey(kind, name), ".tmp-", RandomToken()));
  Claim c;
  c.id = id;
  c.name = name;
  c.owner = owner;
  RETURN_IF_ERROR(session_->WriteFile(tmp, EncodeClaim(c), 0600));
  Status linked = session_->Link(tmp, dest);
  (void)session_->Unlink(tmp);
  if (linked.ok()) {
    // The link shares the temporary's old mtime; start the heartbeat now.
    RETURN_IF_ERROR(session_->Touch(dest));
    return true;
  }
  if (absl::IsAlreadyExists(linked)) return false;
  return linked;
}

StatusOr<std::optional<Claim>> PoolStore::ReadClaim(char kind, const std::string& name) {
  const std::string p = claim_path(kind, name);
  ASSIGN_OR_RETURN(auto attr, session_->StatIfExists(p));
  if (!attr) return std::optional<Claim>();
  auto text = session_->ReadFile(p, 64 * 1024);
  if (absl::IsNotFound(text.status())) return std::optional<Claim>();
  if (!text.ok()) return text.status();
  auto c = DecodeClaim(*text);
  if (!c.ok()) return Annotate(c.status(), p);
  c->key = ClaimKey(kind, name);
  c->mtime_ns = attr->mtime_ns;
  return std::optional<Claim>(*c);
}

StatusOr<std::vector<Claim>> PoolStore::ListClaims(char kind) {
  ASSIGN_OR_RETURN(auto names, session_->List(path("names")));
  std::vector<Claim> out;
  const std::string prefix = std::string(1, kind) + "-";
  for (const auto& n : names) {
    if (!n.starts_with(prefix)) continue;
    const std::string p = path("names/" + n);
    auto attr = session_->StatIfExists(p);
    auto text = session_->ReadFile(p, 64 * 1024);
    if (!attr.ok() || !*attr || !text.ok()) continue;
    auto c = DecodeClaim(*text);
    if (!c.ok()) {
      // Unreadable: keep its key as the name so a sweep can judge its age and remove it.
      Claim broken;
      broken.key = n;
      broken.mtime_ns = (*attr)->mtime_ns;
      out.push_back(broken);
      continue;
    }
    c->key = n;
    c->mtime_ns = (*attr)->mtime_ns;
    out.push_back(std::move(*c));
  }
  return out;
}

Status PoolStore::Release(char kind, const std::string& name, const std::string& id) {
  ASSIGN_OR_RETURN(auto c, ReadClaim(kind, name));
  if (!c || c->id != id) return Status();
  Status s = session_->Unlink(claim_path(kind, name));
  return absl::IsNotFound(s) ? Status() : s;
}

Status PoolStore::RemoveClaim(const std::string& key) {
  Status s = session_->Unlink(path("names/" + key));
  return absl::IsNotFound(s) ? Status() : s;
}

StatusOr<int64_t> PoolStore::ServerNowNs() {
  const std::string clock = path(".clock");
  Status t = session_->Touch(clock);
  if (absl::IsNotFound(t)) {
    Status c = session_->CreateExclusive(clock, 0600);
    if (!c.ok() && !absl::IsAlreadyExists(c)) return c;
    t = session_->Touch(clock);
  }
  RETURN_IF_ERROR(t);
  ASSIGN_OR_RETURN(FileAttr a, session_->Stat(clock));
  return a.mtime_ns;
}

StatusOr<bool> PoolStore::IsStale(int64_t mtime_ns, int abandon_after_s) {
  ASSIGN_OR_RETURN(int64_t now, ServerNowNs());
  return now - mtime_ns > static_cast<int64_t>(abandon_after_s) * 1000000000;
}

}  // namespace vdisk::blockdev::nfs
