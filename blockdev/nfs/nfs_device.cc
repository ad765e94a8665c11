#include "blockdev/nfs/nfs_device.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/nfs/nfs_queue.h"
#include "blockdev/uring/uring_device.h"
#include "blockdev/zero_detect.h"

namespace vdisk::blockdev::nfs {

namespace {

constexpr uint32_t kBlockSize = 512;
constexpr uint32_t kScanChunk = 1u << 20;
constexpr unsigned kScanDepth = 16;

class NfsDevice final : public Device {
 public:
  NfsDevice(std::shared_ptr<Session> session, std::string path, std::string handle,
            FileAttr attr, NfsDeviceOptions options)
      : session_(std::move(session)), path_(std::move(path)), handle_(std::move(handle)),
        attr_(attr), options_(options),
        name_(FormatNfsUri(session_->target(), path_)) {}

  uint64_t size() const override { return attr_.size; }
  uint32_t block_size() const override { return kBlockSize; }
  bool read_only() const override { return options_.read_only; }
  std::string describe() const override { return name_; }
  bool allocation_requires_read() const override { return options_.local_path.empty(); }

  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override {
    QueueTarget t;
    t.target = session_->target();
    t.handle = handle_;
    t.name = name_;
    t.size = attr_.size;
    t.block_size = kBlockSize;
    t.read_only = options_.read_only;
    t.unstable_limit = options_.unstable_limit;
    ASSIGN_OR_RETURN(auto q, NfsQueue::Create(t, depth));
    return std::unique_ptr<IoQueue>(std::move(q));
  }

  StatusOr<ExtentList> allocated(uint64_t offset, uint64_t length) override {
    const uint64_t size = attr_.size;
    if (offset > size || length > size - offset)
      return absl::OutOfRangeError(absl::StrCat(name_, ": allocated [", offset, ", +", length,
                                                ") beyond the end (size ", size, ")"));
    if (length == 0) return ExtentList{};
    if (!options_.local_path.empty()) {
      uring::FileDeviceOptions o;
      o.read_only = true;
      ASSIGN_OR_RETURN(auto local, uring::OpenFileDevice(options_.local_path, o));
      return local->allocated(offset, std::min(length, local->size() - std::min(offset, local->size())));
    }
    ASSIGN_OR_RETURN(FileAttr now, session_->Stat(path_));
    if (now.used == 0) return ExtentList{};
    if (now.used >= size) return ExtentList{{offset, length}};
    return Scan(offset, length);
  }

  const FileAttr& attr() const { return attr_; }

 private:
  // Reads [offset, offset+length) at queue depth and reports the granules holding non-zero
  // bytes.
  StatusOr<ExtentList> Scan(uint64_t offset, uint64_t length) {
    const uint64_t g = std::max<uint64_t>(options_.scan_granularity, kBlockSize);
    const uint64_t start = offset / g * g;
    const uint64_t end = std::min<uint64_t>((offset + length + g - 1) / g * g, attr_.size);
    const uint64_t chunk = std::max<uint64_t>(kScanChunk / g, 1) * g;
    ASSIGN_OR_RETURN(auto q, open_queue(kScanDepth));
    std::vector<AlignedBuffer> bufs;
    for (unsigned i = 0; i < kScanDepth; ++i) bufs.emplace_back(chunk, 4096);
    std::vector<unsigned> free_bufs;
    for (unsigned i = 0; i < kScanDepth; ++i) free_bufs.push_back(i);
    ExtentList found;
    Status error;
    uint64_t pos = start;
    while ((pos < end || q->in_flight() > 0) && error.ok()) {
      while (pos < end && !free_bufs.empty()) {
        const unsigned b = free_bufs.back();
        free_bufs.pop_back();
        const uint64_t len = std::min<uint64_t>(chunk, end - pos);
        const uint64_t at = pos;
        pos += len;
        q->read(at, std::span<std::byte>(bufs[b].data(), len),
                [&, b, at, len](Status s) {
                  free_bufs.push_back(b);
                  if (!s.ok()) {
                    if (error.ok()) error = s;
                    return;
                  }
                  for (uint64_t o = 0; o < len; o += g) {
                    const uint64_t n = std::min<uint64_t>(g, len - o);
                    if (!IsAllZero(bufs[b].data() + o, n)) found.push_back({at + o, n});
                  }
                });
      }
      RETURN_IF_ERROR(q->submit());
      ASSIGN_OR_RETURN(unsigned n, q->poll(1, -1));
      (void)n;
    }
    RETURN_IF_ERROR(q->drain());
    RETURN_IF_ERROR(error);
    return Clip(Normalize(std::move(found)), offset, length);
  }

  std::shared_ptr<Session> session_;
  std::string path_;
  std::string handle_;
  FileAttr attr_;
  NfsDeviceOptions options_;
  std::string name_;
};

}  // namespace

StatusOr<std::unique_ptr<Device>> OpenNfsDevice(std::shared_ptr<Session> session,
                                                const std::string& path,
                                                const NfsDeviceOptions& options) {
  if (!session) return absl::InvalidArgumentError("OpenNfsDevice: no session");
  if (path.empty() || path.front() != '/')
    return absl::InvalidArgumentError(
        absl::StrCat("OpenNfsDevice: path must be absolute within the export: '", path, "'"));
  if (options.scan_granularity < kBlockSize ||
      (options.scan_granularity & (options.scan_granularity - 1)) != 0)
    return absl::InvalidArgumentError("OpenNfsDevice: scan_granularity must be a power of two "
                                      ">= 512");
  const std::string name = FormatNfsUri(session->target(), path);
  ASSIGN_OR_RETURN(FileAttr attr, session->Stat(path));
  if (!attr.is_regular())
    return absl::InvalidArgumentError(absl::StrCat(name, " is not a regular file"));
  if (attr.size % kBlockSize != 0)
    return absl::InvalidArgumentError(absl::StrCat(
        name, " is ", attr.size, " bytes, not a multiple of the block size ", kBlockSize));
  ASSIGN_OR_RETURN(std::string handle, session->FileHandle(path));
  return std::unique_ptr<Device>(
      new NfsDevice(std::move(session), path, std::move(handle), attr, options));
}

StatusOr<std::unique_ptr<Device>> OpenNfsUri(const std::string& rest, bool read_only) {
  ASSIGN_OR_RETURN(NfsUri uri, ParseNfsUri(rest));
  ASSIGN_OR_RETURN(auto session, Session::Connect(uri.target));
  NfsDeviceOptions o;
  o.read_only = read_only;
  return OpenNfsDevice(std::shared_ptr<Session>(std::move(session)), uri.path, o);
}

const FileAttr* GetNfsDeviceAttr(const Device& device) {
  const auto* d = dynamic_cast<const NfsDevice*>(&device);
  return d ? &d->attr() : nullptr;
}

}  // namespace vdisk::blockdev::nfs
