// One mounted NFSv3 connection (libnfs) for control operations: provisioning, metadata files,
// attributes, FSSTAT. Not the data path (that is nfs_queue.h, one connection per queue).
//
// Calls are synchronous and serialised by a mutex (a libnfs context is single-threaded), so a
// Session may be shared by threads. Paths are absolute within the export ("/volumes/x").
// A connection the server closed (a restart) is replaced before the next call; a call that
// loses its connection or gets no answer within `timeout_ms` fails with UNAVAILABLE (and the
// next call connects again), so no call is silently replayed.
//
// Errors: codes from the server's NFS3ERR_* through errno (NOT_FOUND, ALREADY_EXISTS,
// PERMISSION_DENIED for EACCES/EROFS/EPERM, RESOURCE_EXHAUSTED for ENOSPC/EDQUOT, ...);
// Connect(): UNAVAILABLE when the server does not answer, NOT_FOUND when the export is not in
// the server's export list, PERMISSION_DENIED when it is but this host may not mount it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "blockdev/nfs/nfs_target.h"
#include "common/status.h"

struct nfs_context;
struct nfsfh;

namespace vdisk::blockdev::nfs {

struct FileAttr {
  uint64_t size = 0;
  uint64_t used = 0;  // bytes the server says the file occupies (fattr3 `used`)
  uint32_t mode = 0;  // permission bits and file type (S_IFREG, S_IFDIR, ...)
  uint64_t inode = 0;
  int64_t mtime_ns = 0;
  bool is_dir() const;
  bool is_regular() const;
};

struct FsSpace {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t available_bytes = 0;  // to this user (FSSTAT abytes)
};

class Session {
 public:
  static constexpr int kDefaultTimeoutMs = 30000;

  // Mounts target.export_path. See the header comment for the error codes.
  static StatusOr<std::unique_ptr<Session>> Connect(const NfsTarget& target,
                                                    int timeout_ms = kDefaultTimeoutMs);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const NfsTarget& target() const { return target_; }

  StatusOr<FileAttr> Stat(const std::string& path);  // NOT_FOUND if missing
  StatusOr<std::optional<FileAttr>> StatIfExists(const std::string& path);
  StatusOr<FsSpace> StatFs(const std::string& path = "/");

  // ALREADY_EXISTS if the name is taken.
  Status Mkdir(const std::string& path, int mode = 0755);
  // Creates `path` and any missing parents; OK if it exists as a directory.
  Status MkdirAll(const std::string& path, int mode = 0755);
  // Creates an empty regular file, failing with ALREADY_EXISTS if the name is taken (GUARDED).
  Status CreateExclusive(const std::string& path, int mode);
  Status Truncate(const std::string& path, uint64_t size);
  Status Chmod(const std::string& path, int mode);
  // Atomic on the server; replaces an existing file `to`.
  Status Rename(const std::string& from, const std::string& to);
  // A hard link `to` of the file `from`: atomic, ALREADY_EXISTS if `to` exists (so a file
  // written under a temporary name appears whole under a contested one, or not at all).
  Status Link(const std::string& from, const std::string& to);
  // Sets the file's modification time to the server's clock (SETATTR SET_TO_SERVER_TIME).
  Status Touch(const std::string& path);
  Status Unlink(const std::string& path);  // NOT_FOUND if missing
  Status Rmdir(const std::string& path);   // NOT_FOUND if missing, ALREADY_EXISTS if not empty
  // Removes a file or a directory tree; OK if it does not exist.
  Status RemoveAll(const std::string& path);
  // Names in a directory, without "." and "..", sorted.
  StatusOr<std::vector<std::string>> List(const std::string& dir);

  // Whole small files (records, markers). NOT_FOUND if missing; OUT_OF_RANGE past max_bytes.
  StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 1 << 20);
  // Creates or replaces `path` with `data` and makes it durable (COMMIT) before returning.
  // Not atomic by itself: write a temporary name and Rename() it for that.
  Status WriteFile(const std::string& path, const std::string& data, int mode = 0644);

  // The NFSv3 file handle of `path` (opaque bytes, valid on any connection to the server).
  StatusOr<std::string> FileHandle(const std::string& path);

 private:
  Session(NfsTarget target, nfs_context* ctx, int timeout_ms)
      : target_(std::move(target)), timeout_ms_(timeout_ms), ctx_(ctx) {}
  // With mu_ held: a live connection in ctx_ (a new one if the server closed the old one).
  Status EnsureConnected();
  // With mu_ held: the Status for libnfs' result `rc`; a lost connection is dropped.
  Status Error(int rc, const std::string& what);
  Status RemoveTree(const std::string& path, int depth);

  NfsTarget target_;
  int timeout_ms_;
  std::mutex mu_;
  nfs_context* ctx_;  // null after a lost connection, until the next call
};

// Makes a libnfs context for `target` (URL options applied: ports, uid/gid, NFSv3) and mounts
// the export. Shared by Session and the data-path queues. On failure the context is destroyed.
StatusOr<nfs_context*> MountContext(const NfsTarget& target, int timeout_ms);

}  // namespace vdisk::blockdev::nfs
