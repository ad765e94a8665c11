#include "backup/repo/repository.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "backup/util/thread_pool.h"
#include "spdlog/spdlog.h"

namespace vdisk::backup {

namespace {

using nlohmann::json;

constexpr const char* kFormat = "vdisk-backup-repository";

bool IsPowerOfTwo(uint64_t v) { return v && (v & (v - 1)) == 0; }

Status ValidateInit(const InitOptions& o) {
  if (!IsPowerOfTwo(o.chunk_size) || o.chunk_size < (64u << 10) || o.chunk_size > (16u << 20))
    return absl::InvalidArgumentError(
        "chunk size must be a power of two between 64 KiB and 16 MiB");
  if (o.pack_size < o.chunk_size || o.pack_size > (1ull << 30))
    return absl::InvalidArgumentError("pack size must be between the chunk size and 1 GiB");
  if (o.zstd_level < 1 || o.zstd_level > 19)
    return absl::InvalidArgumentError("zstd level must be 1..19");
  return Status();
}

StatusOr<RepoConfig> ParseConfig(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != kFormat)
    return absl::FailedPreconditionError(
        absl::StrCat(where, " holds a 'config' object that is not a vdisk backup repository"));
  if (j.value("version", 0) != 1)
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": repository format version ", j.value("version", 0),
                     " is not supported by this vdisk"));
  RepoConfig c;
  c.id = j.value("id", "");
  c.chunk_size = j.value("chunk_size", 0u);
  c.pack_size = j.value("pack_size", 0ull);
  c.zstd_level = j.value("zstd_level", 1);
  if (c.id.size() != 64 || !IsPowerOfTwo(c.chunk_size) || c.pack_size == 0)
    return absl::DataLossError(absl::StrCat(where, ": repository config is malformed"));
  return c;
}

std::string ConfigJson(const RepoConfig& c) {
  json j = {{"format", kFormat},
            {"version", 1},
            {"id", c.id},
            {"chunk_size", c.chunk_size},
            {"pack_size", c.pack_size},
            {"zstd_level", c.zstd_level},
            {"chunk_id", "hmac-sha256"},
            {"encryption", "aes-256-gcm"},
            {"compression", "zstd"},
            {"created", static_cast<int64_t>(std::time(nullptr))}};
  return j.dump(2);
}

std::string NameAfter(const std::string& key, const char* prefix) {
  std::string name = key.substr(std::string(prefix).size());
  auto slash = name.find_last_of('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

}  // namespace

std::string PackKey(const std::string& pack_name) {
  return absl::StrCat(kPacksPrefix, pack_name.substr(0, 2), "/", pack_name);
}

StatusOr<std::unique_ptr<Repository>> Repository::Init(std::unique_ptr<ObjectStore> store,
                                                       const RepoSecret& secret,
                                                       const InitOptions& options) {
  RETURN_IF_ERROR(ValidateInit(options));
  RETURN_IF_ERROR(ValidateSecret(secret));
  Status check = store->Check();
  if (absl::IsNotFound(check) && options.create_root) {
    RETURN_IF_ERROR(store->CreateRoot());
    check = store->Check();
  }
  RETURN_IF_ERROR(check);
  auto existing = store->Get(kConfigKey);
  if (existing.ok())
    return absl::AlreadyExistsError(
        absl::StrCat("a repository already exists at ", store->describe()));
  if (!absl::IsNotFound(existing.status())) return existing.status();

  RepoConfig config;
  config.id = RandomHex(32);
  config.chunk_size = options.chunk_size;
  config.pack_size = options.pack_size;
  config.zstd_level = options.zstd_level;
  RepoKeys keys = RepoKeys::Generate();
  ASSIGN_OR_RETURN(std::string wrapped, WrapKeys(keys, secret, config.id, options.scrypt));
  // Key first, config last: a repository is initialised once its config exists.
  RETURN_IF_ERROR(store->Put(absl::StrCat(kKeysPrefix, RandomHex(16)), wrapped));
  RETURN_IF_ERROR(store->Put(kConfigKey, ConfigJson(config)));
  return std::unique_ptr<Repository>(new Repository(std::move(store), config, keys));
}

StatusOr<std::unique_ptr<Repository>> Repository::Open(std::unique_ptr<ObjectStore> store,
                                                       const RepoSecret& secret) {
  RETURN_IF_ERROR(ValidateSecret(secret));
  if (Status s = store->Check(); !s.ok()) {
    if (absl::IsNotFound(s))
      return absl::NotFoundError(absl::StrCat("no vdisk backup repository at ", store->describe(),
                                              ": ", s.message()));
    return s;
  }
  auto text = store->Get(kConfigKey);
  if (absl::IsNotFound(text.status()))
    return absl::NotFoundError(absl::StrCat("no vdisk backup repository at ", store->describe(),
                                            " (create one with `vdisk backup init`)"));
  RETURN_IF_ERROR(text.status());
  ASSIGN_OR_RETURN(RepoConfig config, ParseConfig(*text, store->describe()));
  ASSIGN_OR_RETURN(auto slots, store->List(kKeysPrefix));
  if (slots.empty())
    return absl::DataLossError(absl::StrCat(store->describe(), ": repository has no key slots"));
  Status last;
  for (const auto& slot : slots) {
    ASSIGN_OR_RETURN(std::string obj, store->Get(slot.key));
    auto keys = UnwrapKeys(obj, secret, config.id);
    if (keys.ok()) return std::unique_ptr<Repository>(new Repository(std::move(store), config, *keys));
    if (!absl::IsPermissionDenied(keys.status())) spdlog::warn("key slot {}: {}", slot.key, keys.status().ToString());
    last = keys.status();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "wrong repository password or key for ", store->describe(), ": none of its ",
      slots.size(), " key slot(s) opens with ", secret.origin));
}

StatusOr<std::string> Repository::AddKey(const RepoSecret& secret, ScryptParams params) {
  ASSIGN_OR_RETURN(std::string wrapped, WrapKeys(keys_, secret, config_.id, params));
  std::string id = RandomHex(16);
  RETURN_IF_ERROR(store_->Put(absl::StrCat(kKeysPrefix, id), wrapped));
  return id;
}

StatusOr<PackRecord> Repository::ReadPackTrailer(const std::string& pack_name,
                                                 uint64_t pack_size) const {
  const std::string key = PackKey(pack_name);
  if (pack_size < kPackFooterBytes)
    return absl::DataLossError(absl::StrCat("pack ", pack_name, " is too short"));
  ASSIGN_OR_RETURN(std::string footer,
                   store_->GetRange(key, pack_size - kPackFooterBytes, kPackFooterBytes));
  ASSIGN_OR_RETURN(uint32_t trailer_len, ParsePackFooter(footer));
  if (trailer_len > pack_size - kPackFooterBytes)
    return absl::DataLossError(absl::StrCat("pack ", pack_name, ": trailer length out of range"));
  ASSIGN_OR_RETURN(std::string trailer,
                   store_->GetRange(key, pack_size - kPackFooterBytes - trailer_len, trailer_len));
  auto entries = DecodePackTrailer(keys_, pack_name, trailer);
  if (!entries.ok())
    return absl::DataLossError(
        absl::StrCat("pack ", pack_name, ": ", entries.status().message()));
  PackRecord rec;
  rec.name = pack_name;
  rec.size = pack_size;
  rec.entries = std::move(*entries);
  for (const auto& e : rec.entries)
    if (e.offset + e.length > pack_size - kPackFooterBytes - trailer_len)
      return absl::DataLossError(absl::StrCat("pack ", pack_name, ": entry beyond blob area"));
  return rec;
}

StatusOr<LoadedIndex> Repository::LoadIndex(bool adopt_unindexed) const {
  LoadedIndex out;
  ASSIGN_OR_RETURN(auto index_objects, store_->List(kIndexPrefix));
  // Index objects are independent: fetch them in parallel.
  std::vector<StatusOr<std::vector<PackRecord>>> decoded(index_objects.size(),
                                                         absl::UnknownError("not loaded"));
  {
    ThreadPool pool(std::min<unsigned>(store_->parallelism(), 16));
    for (size_t i = 0; i < index_objects.size(); ++i) {
      pool.Submit([&, i] {
        auto data = store_->Get(index_objects[i].key);
        if (!data.ok()) {
          decoded[i] = data.status();
          return;
        }
        decoded[i] = DecodeIndex(keys_, NameAfter(index_objects[i].key, kIndexPrefix), *data);
      });
    }
  }
  for (size_t i = 0; i < index_objects.size(); ++i) {
    if (!decoded[i].ok()) return Annotate(decoded[i].status(), "loading the repository index");
    for (const auto& rec : *decoded[i]) out.index.AddPack(rec);
    out.index_objects.push_back(index_objects[i].key);
  }
  if (!adopt_unindexed) return out;

  ASSIGN_OR_RETURN(auto packs, store_->List(kPacksPrefix));
  std::vector<StoredObject> unindexed;
  for (const auto& p : packs)
    if (!out.index.HasPack(NameAfter(p.key, kPacksPrefix))) unindexed.push_back(p);
  std::vector<StatusOr<PackRecord>> trailers(unindexed.size(), absl::UnknownError("not loaded"));
  {
    ThreadPool pool(std::min<unsigned>(store_->parallelism(), 16));
    for (size_t i = 0; i < unindexed.size(); ++i)
      pool.Submit([&, i] {
        trailers[i] = ReadPackTrailer(NameAfter(unindexed[i].key, kPacksPrefix), unindexed[i].size);
      });
  }
  for (size_t i = 0; i < unindexed.size(); ++i) {
    if (trailers[i].ok()) {
      out.index.AddPack(*trailers[i]);
      out.adopted.push_back(std::move(*trailers[i]));
    } else if (!absl::IsDataLoss(trailers[i].status()) && !absl::IsNotFound(trailers[i].status())) {
      return Annotate(trailers[i].status(), "reading pack trailers");
    } else {
      spdlog::warn("pack {} has no readable trailer: {}", unindexed[i].key,
                   trailers[i].status().ToString());
      out.unreadable_packs.push_back(unindexed[i].key);
    }
  }
  return out;
}

StatusOr<std::string> Repository::WriteIndex(const std::vector<PackRecord>& packs) const {
  const std::string name = RandomHex(32);
  const std::string key = absl::StrCat(kIndexPrefix, name);
  RETURN_IF_ERROR(store_->Put(key, EncodeIndex(keys_, name, packs)));
  return key;
}

StatusOr<std::vector<std::string>> Repository::ListBackups() const {
  ASSIGN_OR_RETURN(auto objects, store_->List(kBackupsPrefix));
  std::vector<std::string> ids;
  for (const auto& o : objects) ids.push_back(o.key.substr(std::string(kBackupsPrefix).size()));
  std::sort(ids.begin(), ids.end());
  return ids;
}

StatusOr<Manifest> Repository::ReadManifest(const std::string& id) const {
  auto data = store_->Get(absl::StrCat(kBackupsPrefix, id));
  if (absl::IsNotFound(data.status()))
    return absl::NotFoundError(absl::StrCat("no backup '", id, "' in ", describe()));
  RETURN_IF_ERROR(data.status());
  return DecodeManifest(keys_, id, *data);
}

Status Repository::WriteManifest(const Manifest& m) const {
  const std::string key = absl::StrCat(kBackupsPrefix, m.id);
  auto existing = store_->Size(key);
  if (existing.ok()) return absl::AlreadyExistsError(absl::StrCat("backup ", m.id, " exists"));
  if (!absl::IsNotFound(existing.status())) return existing.status();
  return store_->Put(key, EncodeManifest(keys_, m));
}

Status Repository::DeleteManifest(const std::string& id) const {
  return store_->Delete(absl::StrCat(kBackupsPrefix, id));
}

StatusOr<std::string> Repository::ResolveBackupId(const std::string& ref,
                                                  const std::string& group) const {
  ASSIGN_OR_RETURN(auto ids, ListBackups());
  if (ref == "latest") {
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
      if (group.empty()) return *it;
      ASSIGN_OR_RETURN(Manifest m, ReadManifest(*it));
      if (m.group == group) return *it;
    }
    return absl::NotFoundError(absl::StrCat("no backups", group.empty() ? "" : " in group '" + group + "'",
                                            " in ", describe()));
  }
  std::vector<std::string> matches;
  for (const auto& id : ids) {
    if (id == ref) return id;
    if (id.starts_with(ref)) matches.push_back(id);
  }
  if (matches.size() == 1) return matches[0];
  if (matches.empty())
    return absl::NotFoundError(absl::StrCat("no backup '", ref, "' in ", describe()));
  return absl::InvalidArgumentError(
      absl::StrCat("backup reference '", ref, "' is ambiguous (", matches.size(), " matches)"));
}

}  // namespace vdisk::backup
