#include "blockdev/local/loop_device.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/fs.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::local {

namespace {
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string SysRead(const std::string& path) {
  auto s = fs::ReadFile(path);
  if (!s.ok()) return "";
  std::string v = *s;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

// Device and inode of the file backing loop device `name` ("loop3"), via LOOP_GET_STATUS64.
bool LoopBacking(const std::string& dev_path, uint64_t* dev, uint64_t* ino, bool* read_only) {
  Fd fd(::open(dev_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  struct loop_info64 info;
  std::memset(&info, 0, sizeof info);
  if (::ioctl(fd.get(), LOOP_GET_STATUS64, &info) != 0) return false;  // ENXIO: unbound
  *dev = info.lo_device;
  *ino = info.lo_inode;
  *read_only = (info.lo_flags & LO_FLAGS_READ_ONLY) != 0;
  return true;
}

// Makes sure /dev/loopN exists (containers without devtmpfs updates) using sysfs's major:minor.
Status EnsureDeviceNode(int n, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return Status();
  std::string devnum = SysRead(absl::StrCat("/sys/block/loop", n, "/dev"));
  auto colon = devnum.find(':');
  unsigned major = 0, minor = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(devnum.substr(0, colon), &major) ||
      !absl::SimpleAtoi(devnum.substr(colon + 1), &minor))
    return absl::NotFoundError(absl::StrCat(path, " does not exist and sysfs has no dev number"));
  if (::mknod(path.c_str(), S_IFBLK | 0660, makedev(major, minor)) != 0 && errno != EEXIST)
    return LastErrnoStatus(absl::StrCat("mknod ", path));
  return Status();
}

bool SysDirectIo(const std::string& dev_path) {
  std::string name = dev_path.substr(dev_path.rfind('/') + 1);
  return SysRead(absl::StrCat("/sys/block/", name, "/loop/dio")) == "1";
}
}  // namespace

StatusOr<std::vector<LoopDevice>> FindLoops(const std::string& image) {
  struct stat target;
  if (::stat(image.c_str(), &target) != 0) {
    if (errno == ENOENT) return std::vector<LoopDevice>{};
    return LastErrnoStatus(absl::StrCat("stat ", image));
  }
  // Only loop devices whose backing file has our file name are opened to compare inodes: never
  // hold someone else's loop device open (that would defer their LOOP_CLR_FD).
  const std::string base = image.substr(image.rfind('/') + 1);
  std::vector<LoopDevice> out;
  DIR* d = ::opendir("/sys/block");
  if (!d) return LastErrnoStatus("opendir /sys/block");
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.starts_with("loop")) names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    // Cheap filter first: only bound loops have a backing_file.
    std::string backing = SysRead(absl::StrCat("/sys/block/", n, "/loop/backing_file"));
    if (backing.empty()) continue;
    if (backing.ends_with(" (deleted)")) backing.resize(backing.size() - 10);
    if (backing.substr(backing.rfind('/') + 1) != base) continue;
    std::string dev_path = "/dev/" + n;
    uint64_t dev = 0, ino = 0;
    bool ro = false;
    if (!LoopBacking(dev_path, &dev, &ino, &ro)) continue;
    if (dev != static_cast<uint64_t>(target.st_dev) || ino != static_cast<uint64_t>(target.st_ino))
      continue;
    out.push_back(LoopDevice{dev_path, ro, SysDirectIo(dev_path)});
  }
  return out;
}

StatusOr<LoopDevice> AttachLoop(const std::string& image, bool read_only) {
  ASSIGN_OR_RETURN(auto existing, FindLoops(image));
  for (const auto& l : existing)
    if (l.read_only == read_only) return l;

  Fd file(::open(image.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (file.get() < 0) return LastErrnoStatus(absl::StrCat("open ", image));
  Fd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (ctl.get() < 0) return LastErrnoStatus("open /dev/loop-control");

  bool want_dio = true;
  for (int attempt = 0; attempt < 64; ++attempt) {
    int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return LastErrnoStatus("LOOP_CTL_GET_FREE");
    std::string dev_path = absl::StrCat("/dev/loop", n);
    RETURN_IF_ERROR(EnsureDeviceNode(n, dev_path));
    Fd loop(::open(dev_path.c_str(), O_RDWR | O_CLOEXEC));
    if (loop.get() < 0) {
      if (errno == ENOENT || errno == ENXIO) continue;  // raced with removal
      return LastErrnoStatus(absl::StrCat("open ", dev_path));
    }
    struct loop_config cfg;
    std::memset(&cfg, 0, sizeof cfg);
    cfg.fd = static_cast<uint32_t>(file.get());
    cfg.info.lo_flags = (want_dio ? LO_FLAGS_DIRECT_IO : 0) | (read_only ? LO_FLAGS_READ_ONLY : 0);
    std::strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), image.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) {
      LoopDevice out{dev_path, read_only, SysDirectIo(dev_path)};
      spdlog::info("loop: {} over {} (read_only={} direct_io={})", dev_path, image, read_only,
                   out.direct_io);
      return out;
    }
    int err = errno;
    if (err == EBUSY) continue;  // someone else took it between GET_FREE and CONFIGURE
    if (err == EINVAL && want_dio) {  // file system without O_DIRECT: buffered loop
      spdlog::warn("loop: direct I/O refused for {}; using a buffered loop device", image);
      want_dio = false;
      continue;
    }
    return ErrnoStatus(err, absl::StrCat("LOOP_CONFIGURE ", dev_path, " over ", image));
  }
  return absl::UnavailableError(absl::StrCat("no free loop device for ", image, " after retries"));
}

Status DetachLoop(const std::string& image, const std::string& loop_path) {
  ASSIGN_OR_RETURN(auto loops, FindLoops(image));
  std::vector<std::string> released;
  for (const auto& l : loops) {
    if (!loop_path.empty() && l.path != loop_path) continue;
    Fd fd(::open(l.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT || errno == ENXIO) continue;
      return LastErrnoStatus(absl::StrCat("open ", l.path));
    }
    if (::ioctl(fd.get(), LOOP_CLR_FD, 0) != 0 && errno != ENXIO)
      return LastErrnoStatus(absl::StrCat("LOOP_CLR_FD ", l.path));
    released.push_back(l.path);
  }
  // While someone still has the device open (often just the tail of an io_uring ring teardown,
  // which drops its file references asynchronously) the kernel only marks it for release on
  // last close. Give that a moment, so a delete right after a detach does not see it attached.
  for (const auto& path : released) {
    const std::string backing =
        absl::StrCat("/sys/block/", path.substr(path.rfind('/') + 1), "/loop/backing_file");
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
      gone = SysRead(backing).empty();
      if (!gone) ::usleep(10 * 1000);
    }
    if (gone) spdlog::info("loop: released {} (was over {})", path, image);
    else spdlog::warn("loop: {} is still open elsewhere; the kernel releases it on last close", path);
  }
  return Status();
}

Status RefreshLoopCapacity(const std::string& image, const std::string& loop_path) {
  ASSIGN_OR_RETURN(auto loops, FindLoops(image));
  for (const auto& l : loops) {
    if (!loop_path.empty() && l.path != loop_path) continue;
    Fd fd(::open(l.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return LastErrnoStatus(absl::StrCat("open ", l.path));
    if (::ioctl(fd.get(), LOOP_SET_CAPACITY, 0) != 0)
      return LastErrnoStatus(absl::StrCat("LOOP_SET_CAPACITY ", l.path));
  }
  return Status();
}

}  // namespace vdisk::blockdev::local
