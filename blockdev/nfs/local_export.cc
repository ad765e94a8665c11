#include "blockdev/nfs/local_export.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace vdisk::blockdev::nfs {

namespace {
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

std::string LocalExport::Local(const std::string& export_path) const {
  if (export_path.empty() || export_path == "/") return root_;
  return root_ + (export_path.front() == '/' ? "" : "/") + export_path;
}

Status LocalExport::Verify(const std::string& marker, const std::string& expected) const {
  auto local = fs::ReadFile(Local(marker));
  if (!local.ok() || *local != expected)
    return absl::FailedPreconditionError(absl::StrCat(
        "local_path ", root_, " does not show the export's tree: ", Local(marker),
        local.ok() ? " differs from the pool marker read over NFS"
                   : absl::StrCat(" is unreadable (", local.status().message(), ")"),
        "; set local_path to where this host sees the export's root on the server's own file "
        "system, or leave it unset"));
  return Status();
}

StatusOr<bool> LocalExport::ProbeReflink(const std::string& dir) const {
  const std::string a = absl::StrCat(Local(dir), "/.vdisk-reflink-probe-", ::getpid());
  const std::string b = a + ".clone";
  Fd fa, fb;
  fa.fd = ::open(a.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fa.fd < 0) return LastErrnoStatus(absl::StrCat("create ", a));
  bool reflink = ::write(fa.fd, "vdisk", 5) == 5 && ::fsync(fa.fd) == 0;
  fb.fd = ::open(b.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  reflink = reflink && fb.fd >= 0 && ::ioctl(fb.fd, FICLONE, fa.fd) == 0;
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  return reflink;
}

Status LocalExport::Reflink(const std::string& src, const std::string& dst) const {
  Fd s, d;
  s.fd = ::open(Local(src).c_str(), O_RDONLY | O_CLOEXEC);
  if (s.fd < 0) return LastErrnoStatus(absl::StrCat("open ", Local(src)));
  d.fd = ::open(Local(dst).c_str(), O_WRONLY | O_CLOEXEC);
  if (d.fd < 0) return LastErrnoStatus(absl::StrCat("open ", Local(dst)));
  if (::ioctl(d.fd, FICLONE, s.fd) != 0) {
    const int err = errno;
    if (err == EOPNOTSUPP || err == EXDEV || err == EINVAL || err == ENOTTY)
      return absl::UnimplementedError(absl::StrCat("FICLONE ", Local(src), " -> ", Local(dst),
                                                   ": the file system cannot reflink"));
    return ErrnoStatus(err, absl::StrCat("FICLONE ", Local(src), " -> ", Local(dst)));
  }
  if (::fsync(d.fd) != 0) return LastErrnoStatus(absl::StrCat("fsync ", Local(dst)));
  return Status();
}

Status LocalExport::Preallocate(const std::string& path, uint64_t size) const {
  Fd f;
  f.fd = ::open(Local(path).c_str(), O_WRONLY | O_CLOEXEC);
  if (f.fd < 0) return LastErrnoStatus(absl::StrCat("open ", Local(path)));
  if (::fallocate(f.fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size)) != 0)
    return LastErrnoStatus(absl::StrCat("fallocate ", size, " bytes for ", Local(path)));
  if (::fsync(f.fd) != 0) return LastErrnoStatus(absl::StrCat("fsync ", Local(path)));
  return Status();
}

}  // namespace vdisk::blockdev::nfs
