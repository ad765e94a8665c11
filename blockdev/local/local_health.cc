// LocalPool::health(): is the file system under the pool's root still the one it opened, and
// does it still take writes?
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "blockdev/local/local_pool_impl.h"

namespace vdisk::blockdev::local {

Status LocalPool::health() {
  const std::string& root = layout_.root();
  struct stat st;
  if (::stat(root.c_str(), &st) != 0)
    return absl::UnavailableError(absl::StrCat("local pool root ", root, ": ", std::strerror(errno)));
  if (st.st_dev != root_dev_)
    return absl::UnavailableError(absl::StrCat(
        "local pool root ", root, " is on another file system than when the pool was opened "
        "(unmounted or replaced under the driver)"));
  if (::access(layout_.marker().c_str(), F_OK) != 0)
    return absl::UnavailableError(
        absl::StrCat("local pool root ", root, " lost its .vdisk-pool marker: ", std::strerror(errno)));
  // A write that reaches the disk: catches a file system remounted read-only after an error,
  // or failing I/O. A full one (ENOSPC) is healthy: space is reported by capacity().
  int fd = ::open(layout_.staging_dir().c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == ENOSPC || errno == EDQUOT || errno == EOPNOTSUPP) return Status();
    return absl::UnavailableError(
        absl::StrCat("local pool root ", root, " takes no writes: ", std::strerror(errno)));
  }
  const char byte = 0;
  int err = 0;
  if (::pwrite(fd, &byte, 1, 0) != 1 || ::fdatasync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0 && err != ENOSPC && err != EDQUOT)
    return absl::UnavailableError(
        absl::StrCat("local pool root ", root, " fails writes: ", std::strerror(err)));
  return Status();
}

}  // namespace vdisk::blockdev::local
