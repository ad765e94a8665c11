// The NFS pool's tree on the export, and its journal: records and name claims, all written
// through NFSv3 (no kernel mount, no NLM locks).
//
//   <dir>/.vdisk-pool                 marker {"format":1,"pool_uuid":...}
//   <dir>/volumes/<id>/disk.img       a volume (thin raw image; the directory is what a
//                                     Filesystem-mode volume mounts, so nothing else lives there)
//   <dir>/snapshots/<id>/disk.img     a snapshot: a read-only sparse raw image, never an archive
//   <dir>/meta/volumes/<id>.json      committed records (blockdev/record_files.h); written under
//   <dir>/meta/snapshots/<id>.json    a temporary name and renamed: the commit point
//   <dir>/names/<v|s>-<hash of name>  name claims {"id","name","owner"}: created by LINK of a
//                                     complete temporary file, which the server does atomically
//                                     and refuses when the name exists -- so two creators of one
//                                     name, in any processes, cannot both win
//   <dir>/staging/<v|s>-<id>/         an object being built; renamed into place when complete
//   <dir>/staging/d-<id>-<rand>/      an object being removed
//   <dir>/.clock                      touched to read the server's clock
//
// A claim's modification time is its creator's heartbeat: long builds touch it. A claim
// without a record whose heartbeat is older than `abandon_after` belongs to a dead creator and
// may be taken over; staging entries and orphaned data are cleaned up on the same rule.
// Thread-safe (the Session serialises calls; nothing here keeps state beyond paths).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blockdev/nfs/nfs_session.h"
#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::blockdev::nfs {

inline constexpr char kDiskImage[] = "disk.img";

struct Claim {
  std::string key;  // file name under names/ (ClaimKey)
  std::string id;
  std::string name;
  std::string owner;
  int64_t mtime_ns = 0;  // server time of creation or last heartbeat
};

class PoolStore {
 public:
  // `dir`: the pool's directory within the export ("/" or "/sub/dir").
  PoolStore(std::shared_ptr<Session> session, std::string dir);

  Session& session() const { return *session_; }
  const std::shared_ptr<Session>& shared_session() const { return session_; }

  // Paths within the export. Ids must already be checked by ValidateId.
  std::string root() const { return dir_; }
  std::string path(const std::string& rel) const;  // dir + "/" + rel
  std::string marker() const { return path(".vdisk-pool"); }
  std::string volume_dir(const std::string& id) const { return path("volumes/" + id); }
  std::string volume_image(const std::string& id) const;
  std::string snapshot_dir(const std::string& id) const { return path("snapshots/" + id); }
  std::string snapshot_image(const std::string& id) const;
  std::string staging(char kind, const std::string& id) const;
  std::string claim_path(char kind, const std::string& name) const;
  static std::vector<std::string> Directories();  // relative, in creation order

  // --- records ---
  StatusOr<Volume> ReadVolume(const std::string& id);      // NOT_FOUND
  StatusOr<Snapshot> ReadSnapshot(const std::string& id);  // NOT_FOUND
  // Every readable record, ordered by id; undecodable ones are logged and skipped.
  StatusOr<std::vector<Volume>> ListVolumes();
  StatusOr<std::vector<Snapshot>> ListSnapshots();
  Status WriteVolume(const Volume& v);
  Status WriteSnapshot(const Snapshot& s);
  Status RemoveVolumeRecord(const std::string& id);  // OK if gone
  Status RemoveSnapshotRecord(const std::string& id);

  // --- claims (kind 'v' volume, 's' snapshot) ---
  // Claims `name` for `id`. true: claimed; false: someone holds it (read it with ReadClaim).
  StatusOr<bool> TryClaim(char kind, const std::string& name, const std::string& id,
                          const std::string& owner);
  StatusOr<std::optional<Claim>> ReadClaim(char kind, const std::string& name);
  // Every claim of `kind` (for sweeps).
  StatusOr<std::vector<Claim>> ListClaims(char kind);
  // Removes the claim if it (still) names `id`. OK if gone.
  Status Release(char kind, const std::string& name, const std::string& id);
  // Removes the claim file `key` whatever it says (sweeps of abandoned claims). OK if gone.
  Status RemoveClaim(const std::string& key);
  Status Heartbeat(char kind, const std::string& name) { return session_->Touch(claim_path(kind, name)); }

  // The server's clock, and whether a heartbeat at `mtime_ns` is older than `abandon_after_s`.
  StatusOr<int64_t> ServerNowNs();
  StatusOr<bool> IsStale(int64_t mtime_ns, int abandon_after_s);

  // Writes `data` under a temporary name next to `dest` and renames it over `dest`.
  Status WriteAtomic(const std::string& dest, const std::string& data, int mode = 0600);

 private:
  StatusOr<std::vector<std::string>> ListIds(const std::string& rel_dir);

  std::shared_ptr<Session> session_;
  std::string dir_;
};

// "<v|s>-<first 32 hex digits of SHA-256(name)>": a fixed-size, path-safe key for any name.
std::string ClaimKey(char kind, const std::string& name);

// A unique token for temporary names and owners ("<16 hex>").
std::string RandomToken();

}  // namespace vdisk::blockdev::nfs
