// The export's file system as the controller sees it locally (pool option local_path): vdisk
// running beside the NFS server, which is how server-side reflinks happen without NFSv4.2
// CLONE (ganesha 4.3 does not serve CLONE or COPY, and libnfs 4.0 cannot send them).
//
// Only data operations go through the local path -- FICLONE of an image, fallocate -- on files
// created through NFS; everything else stays on NFS, and every local change is followed by an
// NFS SETATTR of the file so a server that caches attributes (ganesha's MDCACHE) sees the new
// size and blocks at once. Paths given to it are export-relative (the same strings the pool
// uses over NFS). Thread-safe (plain syscalls).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace vdisk::blockdev::nfs {

class LocalExport {
 public:
  explicit LocalExport(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string Local(const std::string& export_path) const;

  // FAILED_PRECONDITION unless the local file `marker` holds exactly `expected` (the pool's
  // marker as read over NFS): local_path must show the same tree as the export.
  Status Verify(const std::string& marker, const std::string& expected) const;
  // True if FICLONE works in `dir` (probed with two temporary files there).
  StatusOr<bool> ProbeReflink(const std::string& dir) const;
  // Makes the existing file `dst` share every block of `src` (FICLONE; it takes src's size).
  // UNIMPLEMENTED when the file system cannot.
  Status Reflink(const std::string& src, const std::string& dst) const;
  // Reserves the blocks of [0, size) of `path` (fallocate, keeps holes' zeroes).
  // RESOURCE_EXHAUSTED without the space.
  Status Preallocate(const std::string& path, uint64_t size) const;

 private:
  std::string root_;
};

}  // namespace vdisk::blockdev::nfs
