#include "blockdev/local/image_file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vdisk::blockdev::local {

namespace {
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  Status Close(const std::string& what) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return LastErrnoStatus(absl::StrCat("close ", what));
    return Status();
  }

 private:
  int fd_;
};

Status FsyncFd(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return LastErrnoStatus(absl::StrCat("fsync ", path));
  return Status();
}

Status TruncateTo(int fd, const std::string& path, uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    if (err == EFBIG || err == EINVAL)
      return absl::OutOfRangeError(
          absl::StrCat("file system cannot hold a ", size, "-byte image at ", path));
    return ErrnoStatus(err, absl::StrCat("ftruncate ", path));
  }
  return Status();
}
}  // namespace

StatusOr<bool> ProbeReflink(const std::string& dir) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string base = absl::StrCat(dir, "/.reflink-probe-", ::getpid(), "-",
                                  absl::StrFormat("%08x", rng() & 0xffffffff));
  std::string a = base + ".a", b = base + ".b";
  Fd fa(::open(a.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fa.get() < 0) return LastErrnoStatus(absl::StrCat("create ", a));
  char block[4096] = {1};
  bool ok = ::pwrite(fa.get(), block, sizeof block, 0) == static_cast<ssize_t>(sizeof block);
  bool reflink = false;
  if (ok) {
    Fd fb(::open(b.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fb.get() >= 0) reflink = ::ioctl(fb.get(), FICLONE, fa.get()) == 0;
  }
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  if (!ok) return LastErrnoStatus(absl::StrCat("write ", a));
  return reflink;
}

Status CreateSparseImage(const std::string& path, uint64_t size, bool preallocate) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return LastErrnoStatus(absl::StrCat("create ", path));
  RETURN_IF_ERROR(TruncateTo(fd.get(), path, size));
  if (preallocate && size > 0) {
    // Refuse up front what cannot fit: a failing fallocate would first fill the file system
    // (ext4 allocates as it goes), starving every other writer on the node until it gives up.
    struct statvfs sv;
    if (::fstatvfs(fd.get(), &sv) == 0 && static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize < size)
      return absl::ResourceExhaustedError(absl::StrCat("no space to preallocate ", size, " bytes for ", path, " (",
                                                       static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize,
                                                       " available)"));
    int rc = ::fallocate(fd.get(), 0, 0, static_cast<off_t>(size));
    if (rc != 0) {
      int err = errno;
      if (err == ENOSPC || err == EDQUOT)
        return absl::ResourceExhaustedError(
            absl::StrCat("no space to preallocate ", size, " bytes for ", path));
      return ErrnoStatus(err, absl::StrCat("fallocate ", path));
    }
  }
  RETURN_IF_ERROR(FsyncFd(fd.get(), path));
  return fd.Close(path);
}

Status ReflinkImage(int src_fd, const std::string& dst_path, uint64_t size) {
  Fd fd(::open(dst_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return LastErrnoStatus(absl::StrCat("create ", dst_path));
  if (::ioctl(fd.get(), FICLONE, src_fd) != 0) {
    int err = errno;
    if (err == EOPNOTSUPP || err == ENOTTY || err == EXDEV || err == EINVAL)
      return absl::UnimplementedError(absl::StrCat("file system cannot reflink into ", dst_path));
    return ErrnoStatus(err, absl::StrCat("FICLONE into ", dst_path));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("stat ", dst_path));
  if (static_cast<uint64_t>(st.st_size) < size) RETURN_IF_ERROR(TruncateTo(fd.get(), dst_path, size));
  RETURN_IF_ERROR(FsyncFd(fd.get(), dst_path));
  return fd.Close(dst_path);
}

Status GrowImage(const std::string& path, uint64_t size) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return LastErrnoStatus(absl::StrCat("open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("stat ", path));
  if (static_cast<uint64_t>(st.st_size) >= size) return Status();
  RETURN_IF_ERROR(TruncateTo(fd.get(), path, size));
  RETURN_IF_ERROR(FsyncFd(fd.get(), path));
  return fd.Close(path);
}

StatusOr<ImageStat> StatImage(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return LastErrnoStatus(absl::StrCat("stat ", path));
  ImageStat out;
  out.size = static_cast<uint64_t>(st.st_size);
  out.allocated = static_cast<uint64_t>(st.st_blocks) * 512;
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return out;
}

StatusOr<uint64_t> ProbeMaxFileSize(const std::string& dir, uint64_t granularity) {
  int raw = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (raw < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    std::string name = dir + "/.max-size-probe-XXXXXX";  // no O_TMPFILE here: a named one
    raw = ::mkostemp(name.data(), O_CLOEXEC);
    if (raw >= 0) ::unlink(name.c_str());
  }
  Fd fd(raw);
  if (fd.get() < 0) return LastErrnoStatus(absl::StrCat("temporary file in ", dir));
  // Largest n (in units of `granularity`) whose size ftruncate accepts; 1 unit always fits.
  uint64_t lo = 1, hi = static_cast<uint64_t>(INT64_MAX) / granularity;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo + 1) / 2;
    if (::ftruncate(fd.get(), static_cast<off_t>(mid * granularity)) == 0) lo = mid;
    else if (errno == EFBIG || errno == EINVAL) hi = mid - 1;
    else return LastErrnoStatus(absl::StrCat("probing the largest file size in ", dir));
  }
  return lo * granularity;
}

StatusOr<FsSpace> StatFs(const std::string& path) {
  struct statvfs sv;
  if (::statvfs(path.c_str(), &sv) != 0) return LastErrnoStatus(absl::StrCat("statvfs ", path));
  FsSpace out;
  out.total_bytes = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
  out.available_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  return out;
}

}  // namespace vdisk::blockdev::local
