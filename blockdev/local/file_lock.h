// An exclusive flock() on a file, held for the lifetime of the object.
//
// Each FileLock opens its own file description, so two FileLocks on the same file exclude each
// other whether they live in different threads of one process or in different processes. The
// kernel drops the lock when the holder dies, which is how stale in-progress markers are told
// from live ones. Move-only; not thread-safe itself (one owner).
#pragma once

#include <string>

#include "common/status.h"

namespace vdisk::blockdev::local {

class FileLock {
 public:
  FileLock() = default;
  ~FileLock();
  FileLock(FileLock&& o) noexcept;
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Blocks until the lock on `path` (created if missing) is held.
  static StatusOr<FileLock> Acquire(const std::string& path);
  // Like Acquire but never waits: ABORTED if another holder has it, NOT_FOUND if `path` does not
  // exist and `create` is false.
  static StatusOr<FileLock> TryAcquire(const std::string& path, bool create);

  bool held() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Release();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace vdisk::blockdev::local
