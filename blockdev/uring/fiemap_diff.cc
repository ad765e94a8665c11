#include "blockdev/uring/fiemap_diff.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::uring {

namespace {

constexpr uint32_t kUnknownPhysical = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
                                      FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_ENCRYPTED |
                                      FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE |
                                      FIEMAP_EXTENT_DATA_TAIL;
constexpr unsigned kExtentsPerCall = 512;

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

StatusOr<uint64_t> FileSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return LastErrnoStatus("fstat");
  return static_cast<uint64_t>(st.st_size);
}

// One elementary piece of a file's map: zero (hole / unwritten), mapped at a known physical
// address, or data whose address cannot be compared.
struct Piece {
  enum Kind { kZero, kMapped, kOpaque } kind = kZero;
  uint64_t start = 0, end = 0;
  int64_t delta = 0;  // physical - logical, for kMapped
};

std::vector<Piece> Pieces(const std::vector<FileExtent>& extents, uint64_t end) {
  std::vector<Piece> out;
  uint64_t pos = 0;
  for (const FileExtent& e : extents) {
    if (e.logical >= end) break;
    if (e.logical > pos) out.push_back({Piece::kZero, pos, e.logical, 0});
    uint64_t s = std::max(pos, e.logical), t = std::min(e.end(), end);
    if (s >= t) continue;
    Piece p{Piece::kOpaque, s, t, 0};
    if (e.unwritten()) {
      p.kind = Piece::kZero;
    } else if (e.physical_known()) {
      p.kind = Piece::kMapped;
      p.delta = static_cast<int64_t>(e.physical) - static_cast<int64_t>(e.logical);
    }
    out.push_back(p);
    pos = t;
  }
  if (pos < end) out.push_back({Piece::kZero, pos, end, 0});
  return out;
}

}  // namespace

bool FileExtent::shared() const { return flags & FIEMAP_EXTENT_SHARED; }
bool FileExtent::unwritten() const { return flags & FIEMAP_EXTENT_UNWRITTEN; }
bool FileExtent::physical_known() const { return (flags & kUnknownPhysical) == 0; }

StatusOr<std::vector<FileExtent>> ReadFiemap(int fd, uint64_t offset, uint64_t length) {
  std::vector<FileExtent> out;
  const size_t bytes = sizeof(struct fiemap) + kExtentsPerCall * sizeof(struct fiemap_extent);
  auto storage = std::make_unique<uint64_t[]>((bytes + 7) / 8);
  auto* fm = reinterpret_cast<struct fiemap*>(storage.get());
  const uint64_t end = length > UINT64_MAX - offset ? UINT64_MAX : offset + length;
  uint64_t pos = offset;
  bool first = true;
  while (pos < end) {
    std::fill_n(storage.get(), (bytes + 7) / 8, 0);
    fm->fm_start = pos;
    fm->fm_length = end - pos;
    fm->fm_flags = first ? FIEMAP_FLAG_SYNC : 0;
    fm->fm_extent_count = kExtentsPerCall;
    if (::ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
      int err = errno;
      if (err == ENOTTY || err == EOPNOTSUPP)
        return absl::UnimplementedError("FIEMAP is not supported by this file system");
      return ErrnoStatus(err, absl::StrCat("FIEMAP at ", pos));
    }
    first = false;
    if (fm->fm_mapped_extents == 0) break;
    bool last = false;
    for (uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
      const struct fiemap_extent& fe = fm->fm_extents[i];
      out.push_back({fe.fe_logical, fe.fe_physical, fe.fe_length, fe.fe_flags});
      if (fe.fe_flags & FIEMAP_EXTENT_LAST) last = true;
    }
    const FileExtent& tail = out.back();
    if (last || tail.end() <= pos) break;
    pos = tail.end();
  }
  return out;
}

StatusOr<std::vector<FileExtent>> ReadFiemap(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return LastErrnoStatus(absl::StrCat("open ", path));
  auto r = ReadFiemap(fd.get(), 0, UINT64_MAX);
  if (!r.ok()) return Annotate(r.status(), path);
  return r;
}

StatusOr<ExtentList> AllocatedExtents(const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<FileExtent> extents, ReadFiemap(path));
  ExtentList out;
  for (const FileExtent& e : extents)
    if (!e.unwritten()) out.push_back({e.logical, e.length});
  return Normalize(std::move(out));
}

ExtentList DiffExtentMaps(const std::vector<FileExtent>& base,
                          const std::vector<FileExtent>& target, uint64_t end) {
  std::vector<Piece> a = Pieces(base, end), b = Pieces(target, end);
  ExtentList out;
  size_t i = 0, j = 0;
  uint64_t pos = 0;
  while (pos < end && i < a.size() && j < b.size()) {
    const Piece& pa = a[i];
    const Piece& pb = b[j];
    const uint64_t stop = std::min(pa.end, pb.end);
    const bool same = (pa.kind == Piece::kZero && pb.kind == Piece::kZero) ||
                      (pa.kind == Piece::kMapped && pb.kind == Piece::kMapped &&
                       pa.delta == pb.delta);
    if (!same) {
      if (!out.empty() && out.back().end() == pos) out.back().length += stop - pos;
      else out.push_back({pos, stop - pos});
    }
    pos = stop;
    if (pa.end == stop) ++i;
    if (pb.end == stop) ++j;
  }
  return out;
}

StatusOr<ExtentList> DifferingExtents(int base_fd, int target_fd) {
  ASSIGN_OR_RETURN(uint64_t base_size, FileSize(base_fd));
  ASSIGN_OR_RETURN(uint64_t target_size, FileSize(target_fd));
  const uint64_t end = std::max(base_size, target_size);
  ASSIGN_OR_RETURN(auto a, ReadFiemap(base_fd, 0, end));
  ASSIGN_OR_RETURN(auto b, ReadFiemap(target_fd, 0, end));
  return DiffExtentMaps(a, b, end);
}

StatusOr<ExtentList> DifferingExtents(const std::string& base, const std::string& target) {
  Fd a(::open(base.c_str(), O_RDONLY | O_CLOEXEC));
  if (a.get() < 0) return LastErrnoStatus(absl::StrCat("open ", base));
  Fd b(::open(target.c_str(), O_RDONLY | O_CLOEXEC));
  if (b.get() < 0) return LastErrnoStatus(absl::StrCat("open ", target));
  auto r = DifferingExtents(a.get(), b.get());
  if (!r.ok()) return Annotate(r.status(), absl::StrCat(base, " vs ", target));
  return r;
}

}  // namespace vdisk::blockdev::uring
