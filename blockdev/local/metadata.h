// Persistent records of the local pool: one JSON file per volume and per snapshot.
//
// A record is written with fs::WriteFileAtomic (temp file, fsync, rename, fsync dir), so a reader
// sees the old record or the new one, never a torn one; writing a volume's record is the commit
// point of its creation. Readers need no lock; writers hold the pool lock (see pool_lock.h).
// Encode/Decode are pure; Read/Write/List touch only files under the Layout. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "blockdev/local/layout.h"
#include "blockdev/pool.h"
#include "blockdev/record_files.h"
#include "common/status.h"

namespace vdisk::blockdev::local {

// The record codec is blockdev/record_files.h (shared with the nfs pool).
using ::vdisk::blockdev::DecodeSnapshot;
using ::vdisk::blockdev::DecodeVolume;
using ::vdisk::blockdev::EncodeSnapshot;
using ::vdisk::blockdev::EncodeVolume;
using ::vdisk::blockdev::ParseAccessMode;
using ::vdisk::blockdev::ParseVolumeMode;

class MetaStore {
 public:
  explicit MetaStore(const Layout& layout) : layout_(layout) {}

  // NOT_FOUND when no record exists (ids must already be validated).
  StatusOr<Volume> ReadVolume(const std::string& id) const;
  StatusOr<Snapshot> ReadSnapshot(const std::string& id) const;
  // Every readable record, ordered by id. A record that cannot be decoded is skipped and logged
  // (it never aborts a listing: one bad file must not hide the rest of the pool).
  StatusOr<std::vector<Volume>> ListVolumes() const;
  StatusOr<std::vector<Snapshot>> ListSnapshots() const;
  // Ids of every record file, readable or not, sorted.
  StatusOr<std::vector<std::string>> VolumeIds() const;
  StatusOr<std::vector<std::string>> SnapshotIds() const;

  // Callers hold the pool lock.
  Status WriteVolume(const Volume& v) const;
  Status WriteSnapshot(const Snapshot& s) const;
  // OK if already gone. Durable (fsyncs the directory) on return.
  Status RemoveVolume(const std::string& id) const;
  Status RemoveSnapshot(const std::string& id) const;

 private:
  const Layout& layout_;
};

}  // namespace vdisk::blockdev::local
