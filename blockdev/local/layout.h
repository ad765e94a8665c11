// Where the local pool keeps things under its root directory, and the ids it hands out.
//
//   <root>/.vdisk-pool              marker: {"format":1}; created on first open
//   <root>/.lock                    flock()ed around every metadata change (threads and processes)
//   <root>/volumes/<id>/disk.img    a volume: thin raw image; the directory is what a Filesystem
//                                   mode volume bind-mounts, so nothing else lives in it
//   <root>/snapshots/<id>/disk.img  a snapshot: read-only raw image (reflink or sparse copy)
//   <root>/meta/volumes/<id>.json   committed volume record (writing it is the commit point)
//   <root>/meta/snapshots/<id>.json committed snapshot record
//   <root>/meta/names/volumes/<h>.json   name index: {"name","id"} of the committed volume
//   <root>/meta/names/snapshots/<h>.json (h: hex SHA-256 of the name; see name_index.h)
//   <root>/staging/                 objects being built (<v|s>-<id>.intent + <v|s>-<id>/) and
//                                   objects being removed (d-<id>-<rand>); swept when stale
//
// Ids are "<name prefix>-<12 hex>" restricted to [A-Za-z0-9._-]: readable for an operator, never
// a path component with meaning ("." / ".."), at most 64 bytes. Pure functions; thread-safe.
#pragma once

#include <string>

#include "blockdev/record_files.h"
#include "common/status.h"

namespace vdisk::blockdev::local {

inline constexpr int kLayoutFormat = kRecordFormat;
inline constexpr const char* kDiskImage = "disk.img";

// Ids and names follow the rules of blockdev/record_files.h (ValidateId, ValidateName, NewId).
using ::vdisk::blockdev::NewId;
using ::vdisk::blockdev::ValidateId;
using ::vdisk::blockdev::ValidateName;

class Layout {
 public:
  explicit Layout(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string marker() const { return root_ + "/.vdisk-pool"; }
  std::string lock_file() const { return root_ + "/.lock"; }
  std::string volumes_dir() const { return root_ + "/volumes"; }
  std::string snapshots_dir() const { return root_ + "/snapshots"; }
  std::string volume_meta_dir() const { return root_ + "/meta/volumes"; }
  std::string snapshot_meta_dir() const { return root_ + "/meta/snapshots"; }
  std::string staging_dir() const { return root_ + "/staging"; }
  std::string volume_names_dir() const { return root_ + "/meta/names/volumes"; }
  std::string snapshot_names_dir() const { return root_ + "/meta/names/snapshots"; }

  // These take ids already checked by ValidateId (they assert nothing themselves).
  std::string volume_dir(const std::string& id) const { return volumes_dir() + "/" + id; }
  std::string volume_image(const std::string& id) const {
    return volume_dir(id) + "/" + kDiskImage;
  }
  std::string snapshot_dir(const std::string& id) const { return snapshots_dir() + "/" + id; }
  std::string snapshot_image(const std::string& id) const {
    return snapshot_dir(id) + "/" + kDiskImage;
  }
  std::string volume_meta(const std::string& id) const {
    return volume_meta_dir() + "/" + id + ".json";
  }
  std::string snapshot_meta(const std::string& id) const {
    return snapshot_meta_dir() + "/" + id + ".json";
  }

 private:
  std::string root_;
};

}  // namespace vdisk::blockdev::local
