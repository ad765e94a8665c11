// A backup repository on an ObjectStore (layout and formats in backup/FORMAT.md):
//
//   config               plaintext JSON: format version, repository id, chunk/pack sizes
//   keys/<id>            the master key wrapped by a password or key file (one per slot)
//   packs/<xx>/<id>      pack objects: sealed chunk blobs + self-describing trailer
//   index/<id>           sealed lists of packs and their chunks
//   backups/<backup-id>  sealed manifests (one per backup; written last)
//   locks/<id>           shared/exclusive locks (plaintext JSON)
//
// Nothing is ever overwritten except lock objects: packs and indexes have fresh random names,
// manifests are named by their unique backup id, so a crash leaves only unreferenced objects.
// Thread-safe after Open() (const methods; the store is thread-safe).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backup/repo/chunk_index.h"
#include "backup/repo/crypto.h"
#include "backup/repo/key_wrap.h"
#include "backup/repo/manifest.h"
#include "backup/repo/pack_format.h"
#include "backup/store/object_store.h"
#include "common/status.h"

namespace vdisk::backup {

struct RepoConfig {
  std::string id;                       // 64 hex
  uint32_t chunk_size = 1u << 20;       // bytes, power of two, 64 KiB .. 16 MiB
  uint64_t pack_size = 64ull << 20;     // target pack size
  int zstd_level = 1;
};

struct InitOptions {
  uint32_t chunk_size = 1u << 20;
  uint64_t pack_size = 64ull << 20;
  int zstd_level = 1;
  bool create_root = false;  // mkdir -p / create the bucket when missing
  ScryptParams scrypt;
};

// Index objects and unindexed pack trailers, loaded.
struct LoadedIndex {
  ChunkIndex index;
  std::vector<std::string> index_objects;  // keys of the index objects read
  std::vector<PackRecord> adopted;         // packs no index listed (resumed from trailers)
  std::vector<std::string> unreadable_packs;  // packs without a readable trailer (debris)
};

inline constexpr const char* kConfigKey = "config";
inline constexpr const char* kKeysPrefix = "keys/";
inline constexpr const char* kPacksPrefix = "packs/";
inline constexpr const char* kIndexPrefix = "index/";
inline constexpr const char* kBackupsPrefix = "backups/";
inline constexpr const char* kLocksPrefix = "locks/";

std::string PackKey(const std::string& pack_name);

class Repository {
 public:
  // Creates a repository: ALREADY_EXISTS if one is there, NOT_FOUND if the root/bucket is
  // missing and !create_root.
  static StatusOr<std::unique_ptr<Repository>> Init(std::unique_ptr<ObjectStore> store,
                                                    const RepoSecret& secret,
                                                    const InitOptions& options);
  // NOT_FOUND (no repository there), PERMISSION_DENIED (no key slot opens with `secret`).
  static StatusOr<std::unique_ptr<Repository>> Open(std::unique_ptr<ObjectStore> store,
                                                    const RepoSecret& secret);

  // Adds another key slot (e.g. a key file next to the password). Returns the slot id.
  StatusOr<std::string> AddKey(const RepoSecret& secret, ScryptParams params = {});

  const RepoConfig& config() const { return config_; }
  const RepoKeys& keys() const { return keys_; }
  ObjectStore& store() const { return *store_; }
  std::string describe() const { return store_->describe(); }

  // Reads every index object and (if adopt_unindexed) the trailers of packs no index lists.
  StatusOr<LoadedIndex> LoadIndex(bool adopt_unindexed) const;
  // Writes a new index object listing `packs`; returns its key.
  StatusOr<std::string> WriteIndex(const std::vector<PackRecord>& packs) const;
  // A pack's own entry list, from its trailer.
  StatusOr<PackRecord> ReadPackTrailer(const std::string& pack_name, uint64_t pack_size) const;

  // Backup ids, sorted (oldest first).
  StatusOr<std::vector<std::string>> ListBackups() const;
  StatusOr<Manifest> ReadManifest(const std::string& id) const;
  // ALREADY_EXISTS if a manifest with this id exists.
  Status WriteManifest(const Manifest& m) const;
  Status DeleteManifest(const std::string& id) const;
  // "latest", a full id, or a unique prefix of one -> the full id.
  StatusOr<std::string> ResolveBackupId(const std::string& ref, const std::string& group = "") const;

 private:
  Repository(std::unique_ptr<ObjectStore> store, RepoConfig config, RepoKeys keys)
      : store_(std::move(store)), config_(std::move(config)), keys_(keys) {}

  std::unique_ptr<ObjectStore> store_;
  RepoConfig config_;
  RepoKeys keys_;
};

}  // namespace vdisk::backup
