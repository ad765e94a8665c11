#include "blockdev/local/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::local {

FileLock::~FileLock() { Release(); }

FileLock::FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    Release();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void FileLock::Release() {
  if (fd_ >= 0) {
    ::close(fd_);  // closing the description drops the flock
    fd_ = -1;
  }
}

StatusOr<FileLock> FileLock::Acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open lock ", path));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, absl::StrCat("flock ", path));
  }
  return FileLock(fd);
}

StatusOr<FileLock> FileLock::TryAcquire(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open lock ", path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return absl::AbortedError(absl::StrCat(path, " is locked"));
    return ErrnoStatus(err, absl::StrCat("flock ", path));
  }
  return FileLock(fd);
}

}  // namespace vdisk::blockdev::local
