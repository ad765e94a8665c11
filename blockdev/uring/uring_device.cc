#include "blockdev/uring/uring_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "blockdev/uring/fiemap_diff.h"
#include "blockdev/uring/uring_queue.h"

namespace vdisk::blockdev::uring {

namespace {

// Direct-I/O alignment the kernel reports (statx STATX_DIOALIGN, 6.1+); {0, 0} if unknown.
std::pair<uint32_t, uint32_t> DioAlign(int fd) {
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN))
    return {stx.stx_dio_offset_align, stx.stx_dio_mem_align};
  return {0, 0};
}

class FileDevice final : public Device {
 public:
  FileDevice(std::string path, int fd, FileDeviceInfo info, uint64_t size, bool read_only)
      : path_(std::move(path)), fd_(fd), info_(info), size_(size), read_only_(read_only) {}
  ~FileDevice() override { ::close(fd_); }

  uint64_t size() const override { return size_.load(std::memory_order_relaxed); }
  uint32_t block_size() const override { return info_.block_size; }
  uint32_t buffer_alignment() const override { return info_.buffer_alignment; }
  bool read_only() const override { return read_only_; }
  std::string describe() const override { return "file:" + path_; }

  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override {
    QueueTarget t;
    t.fd = fd_;
    t.block_device = info_.block_device;
    t.direct = info_.direct;
    t.read_only = read_only_;
    t.size = size();
    t.block_size = info_.block_size;
    t.buffer_alignment = info_.buffer_alignment;
    t.name = describe();
    ASSIGN_OR_RETURN(auto q, UringQueue::Create(t, depth));
    return std::unique_ptr<IoQueue>(std::move(q));
  }

  StatusOr<ExtentList> allocated(uint64_t offset, uint64_t length) override {
    const uint64_t size = this->size();
    if (offset > size || length > size - offset)
      return absl::OutOfRangeError(absl::StrCat(describe(), ": allocated [", offset, ", +",
                                                length, ") beyond the end (size ", size, ")"));
    const uint64_t end = offset + length;
    if (info_.block_device) {
      if (length == 0) return ExtentList{};
      return ExtentList{{offset, length}};
    }
    ExtentList out;
    uint64_t pos = offset;
    while (pos < end) {
      off_t data = ::lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;  // no data at or after pos
        if (errno == EINVAL || errno == EOPNOTSUPP) {  // no SEEK_DATA support: all data
          out.push_back({pos, end - pos});
          break;
        }
        return LastErrnoStatus(absl::StrCat(describe(), ": lseek(SEEK_DATA, ", pos, ")"));
      }
      if (static_cast<uint64_t>(data) >= end) break;
      off_t hole = ::lseek(fd_, data, SEEK_HOLE);
      if (hole < 0)
        return LastErrnoStatus(absl::StrCat(describe(), ": lseek(SEEK_HOLE, ", data, ")"));
      uint64_t stop = std::min<uint64_t>(static_cast<uint64_t>(hole), end);
      if (stop <= static_cast<uint64_t>(data)) break;
      out.push_back({static_cast<uint64_t>(data), stop - static_cast<uint64_t>(data)});
      pos = stop;
    }
    // File system blocks are at least the logical block size; keep the promise anyway.
    return Clip(AlignOut(out, info_.block_size), offset, length);
  }

  // Two files on an extent file system that share blocks (reflinks): FIEMAP tells which
  // ranges map different physical blocks (fiemap_diff.h). Block devices have no such map.
  StatusOr<ExtentList> changed_since(Device& base) override {
    auto* other = dynamic_cast<FileDevice*>(&base);
    if (other == nullptr || info_.block_device || other->info_.block_device)
      return Device::changed_since(base);
    return DifferingExtents(other->fd_, fd_);
  }

  const FileDeviceInfo& info() const { return info_; }

 private:
  std::string path_;
  int fd_;
  FileDeviceInfo info_;
  std::atomic<uint64_t> size_;
  bool read_only_;
};

}  // namespace

StatusOr<std::unique_ptr<Device>> OpenFileDevice(const std::string& path,
                                                 const FileDeviceOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("file device: empty path");
  const std::string name = "file:" + path;
  int flags = O_CLOEXEC | (options.read_only ? O_RDONLY : O_RDWR);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0 && errno == ENOENT && options.create && !options.read_only) {
    fd = ::open(path.c_str(), flags | O_CREAT | O_EXCL, 0644);
    if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(options.create_size)) != 0) {
      Status s = LastErrnoStatus(absl::StrCat(name, ": truncate to ", options.create_size));
      ::close(fd);
      ::unlink(path.c_str());
      return s;
    }
  }
  if (fd < 0 && errno == EISDIR)
    return absl::InvalidArgumentError(absl::StrCat(name, ": is a directory"));
  if (fd < 0) return LastErrnoStatus(absl::StrCat(name, ": open"));
  auto fail = [fd](Status s) {
    ::close(fd);
    return s;
  };

  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(LastErrnoStatus(name + ": fstat"));
  FileDeviceInfo info;
  uint64_t size = 0;
  if (S_ISBLK(st.st_mode)) {
    info.block_device = true;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0)
      return fail(LastErrnoStatus(name + ": BLKGETSIZE64"));
    int lbs = 512;
    if (::ioctl(fd, BLKSSZGET, &lbs) != 0) return fail(LastErrnoStatus(name + ": BLKSSZGET"));
    info.block_size = static_cast<uint32_t>(lbs);
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
    info.block_size = 512;
  } else {
    return fail(absl::InvalidArgumentError(
        absl::StrCat(name, ": not a regular file or block device")));
  }

  if (options.direct != DirectMode::kOff) {
    auto [offset_align, mem_align] = DioAlign(fd);
    if (offset_align == 0) {  // kernel did not say: conservative defaults
      offset_align = info.block_device ? info.block_size : 4096;
      mem_align = 4096;
    }
    offset_align = std::max<uint32_t>(offset_align, info.block_size);
    std::string why;
    if (size % offset_align != 0) {
      why = absl::StrCat("size ", size, " is not a multiple of the direct-I/O alignment ",
                         offset_align);
    } else if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_DIRECT) != 0) {
      why = absl::StrCat("the file system refuses O_DIRECT (errno ", errno, ")");
    }
    if (why.empty()) {
      info.direct = true;
      info.block_size = offset_align;
      info.buffer_alignment = std::max<uint32_t>(mem_align, 1);
    } else if (options.direct == DirectMode::kOn) {
      return fail(absl::InvalidArgumentError(absl::StrCat(name, ": direct=on: ", why)));
    }
  }
  return std::unique_ptr<Device>(
      new FileDevice(path, fd, info, size, options.read_only));
}

const FileDeviceInfo* GetFileDeviceInfo(const Device& device) {
  const auto* fd = dynamic_cast<const FileDevice*>(&device);
  return fd ? &fd->info() : nullptr;
}

StatusOr<std::pair<std::string, FileDeviceOptions>> ParseFileUri(const std::string& rest,
                                                                 bool read_only) {
  FileDeviceOptions options;
  options.read_only = read_only;
  std::string path = rest;
  auto q = rest.find('?');
  if (q != std::string::npos) {
    path = rest.substr(0, q);
    std::vector<std::string> items = absl::StrSplit(rest.substr(q + 1), '&', absl::SkipEmpty());
    for (const std::string& item : items) {
      std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (kv.first == "direct") {
        if (kv.second == "auto") options.direct = DirectMode::kAuto;
        else if (kv.second == "on" || kv.second == "1" || kv.second == "true")
          options.direct = DirectMode::kOn;
        else if (kv.second == "off" || kv.second == "0" || kv.second == "false")
          options.direct = DirectMode::kOff;
        else
          return absl::InvalidArgumentError(
              absl::StrCat("file URI: direct must be auto|on|off, got '", kv.second, "'"));
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("file URI: unknown option '", kv.first, "' (known: direct)"));
      }
    }
  }
  if (path.empty()) return absl::InvalidArgumentError("file URI: empty path");
  return std::make_pair(path, options);
}

}  // namespace vdisk::blockdev::uring
