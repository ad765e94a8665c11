#include "blockdev/rbd/rbd_device.h"

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "blockdev/rbd/rbd_queue.h"

namespace vdisk::blockdev::rbd {

namespace {

constexpr uint32_t kBlockSize = 512;

// The open image and what it needs (its I/O context, which keeps the cluster connected);
// shared by the Device and its queues.
struct OpenImage {
  IoCtx io;
  Image image;
  rbd_image_t get() const { return image.get(); }
};

class RbdDevice final : public Device {
 public:
  RbdDevice(IoCtx io, Image image, bool read_only, std::string name, DiffMode diff)
      : image_(std::make_shared<OpenImage>(OpenImage{std::move(io), std::move(image)})),
        read_only_(read_only), name_(std::move(name)), diff_(diff) {}

  uint64_t size() const override {
    uint64_t size = 0;
    rbd_get_size(image_->get(), &size);
    return size;
  }
  uint32_t block_size() const override { return kBlockSize; }
  bool read_only() const override { return read_only_; }
  std::string describe() const override { return name_; }

  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override {
    ASSIGN_OR_RETURN(auto q, RbdQueue::Create(image_, image_->get(), depth, read_only_,
                                              kBlockSize, name_));
    return std::unique_ptr<IoQueue>(std::move(q));
  }

  StatusOr<ExtentList> allocated(uint64_t offset, uint64_t length) override {
    const uint64_t size = this->size();
    if (offset > size || length > size - offset)
      return absl::OutOfRangeError(absl::StrCat(name_, ": allocated [", offset, ", +", length,
                                                ") beyond the end (", size, " bytes)"));
    if (length == 0) return ExtentList{};
    bool whole = diff_ == DiffMode::kWholeObject ||
                 (diff_ == DiffMode::kAuto && HasValidFastDiff(image_->get()));
    auto extents = DiffExtents(image_->get(), "", offset, length, whole, false);
    if (!extents.ok()) return Annotate(extents.status(), name_);
    return Clip(*extents, offset, length);
  }

 private:
  std::shared_ptr<OpenImage> image_;
  bool read_only_;
  std::string name_;
  DiffMode diff_;
};

struct DiffState {
  ExtentList extents;
  bool include_zeroed;
};

int CollectDiff(uint64_t offset, size_t length, int exists, void* arg) {
  auto* st = static_cast<DiffState*>(arg);
  if (!exists && !st->include_zeroed) return 0;
  if (!st->extents.empty() && st->extents.back().end() == offset) {
    st->extents.back().length += length;
  } else {
    st->extents.push_back(Extent{offset, length});
  }
  return 0;
}

StatusOr<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "off" || v == "no") return false;
  return absl::InvalidArgumentError(absl::StrCat("rbd uri: ", key, "=", v, " is not a boolean"));
}

}  // namespace

bool HasValidFastDiff(rbd_image_t image) {
  uint64_t features = 0, flags = 0;
  if (rbd_get_features(image, &features) < 0) return false;
  if (!(features & RBD_FEATURE_FAST_DIFF)) return false;
  if (rbd_get_flags(image, &flags) < 0) return false;
  return !(flags & (RBD_FLAG_FAST_DIFF_INVALID | RBD_FLAG_OBJECT_MAP_INVALID));
}

StatusOr<ExtentList> DiffExtents(rbd_image_t image, const std::string& from_snap,
                                 uint64_t offset, uint64_t length, bool whole_object,
                                 bool include_zeroed) {
  DiffState st{{}, include_zeroed};
  int r = rbd_diff_iterate2(image, from_snap.empty() ? nullptr : from_snap.c_str(), offset,
                            length, /*include_parent=*/1, whole_object ? 1 : 0, &CollectDiff, &st);
  if (r < 0)
    return ErrnoStatus(-r, absl::StrCat("rbd_diff_iterate2",
                                        from_snap.empty() ? "" : " from @", from_snap));
  return Normalize(std::move(st.extents));
}

StatusOr<std::unique_ptr<Device>> OpenRbdDevice(std::shared_ptr<Cluster> cluster,
                                                const ImageSpec& spec, bool read_only,
                                                DiffMode diff) {
  if (!spec.snap.empty()) read_only = true;
  ASSIGN_OR_RETURN(IoCtx io, IoCtx::Open(cluster, spec.pool));
  std::string name = absl::StrCat("rbd:", spec.pool, "/",
                                  spec.image.empty() ? spec.image_id : spec.image);
  if (!spec.snap.empty()) absl::StrAppend(&name, "@", spec.snap);
  StatusOr<Image> image = spec.image_id.empty()
                              ? Image::OpenByName(io, spec.image, spec.snap, read_only)
                              : Image::OpenById(io, spec.image_id, spec.snap, read_only);
  if (!image.ok()) return image.status();
  return std::unique_ptr<Device>(
      new RbdDevice(std::move(io), std::move(*image), read_only, std::move(name), diff));
}

StatusOr<RbdUri> ParseRbdUri(const std::string& rest) {
  RbdUri uri;
  std::string path = rest;
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    path = rest.substr(0, q);
    query = rest.substr(q + 1);
  }
  auto slash = path.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == path.size())
    return absl::InvalidArgumentError(
        absl::StrCat("rbd uri '", path, "': want rbd:<pool>/<image>[@snap][?options]"));
  uri.spec.pool = path.substr(0, slash);
  std::string image = path.substr(slash + 1);
  if (auto at = image.find('@'); at != std::string::npos) {
    uri.spec.snap = image.substr(at + 1);
    image = image.substr(0, at);
    if (uri.spec.snap.empty() || image.empty())
      return absl::InvalidArgumentError(absl::StrCat("rbd uri '", path, "': empty image or snap"));
  }
  if (image.find('/') != std::string::npos)
    return absl::InvalidArgumentError(
        absl::StrCat("rbd uri '", path, "': rados namespaces are not supported"));
  uri.spec.image = image;
  for (const std::string& item : std::vector<std::string>(absl::StrSplit(query, '&', absl::SkipEmpty()))) {
    auto eq = item.find('=');
    if (eq == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("rbd uri: option '", item, "' wants k=v"));
    std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "conf") {
      uri.cluster.conf = v;
    } else if (k == "id" || k == "user") {
      uri.cluster.user = v.starts_with("client.") ? v.substr(7) : v;
    } else if (k == "keyring") {
      uri.cluster.keyring = v;
    } else if (k == "mon_host") {
      uri.cluster.mon_host = v;
    } else if (k == "cache") {
      ASSIGN_OR_RETURN(bool on, ParseBool(k, v));
      uri.cluster.config["rbd_cache"] = on ? "true" : "false";
    } else if (k == "diff") {
      if (v == "auto") uri.diff = DiffMode::kAuto;
      else if (v == "exact") uri.diff = DiffMode::kExact;
      else if (v == "object") uri.diff = DiffMode::kWholeObject;
      else return absl::InvalidArgumentError("rbd uri: diff= wants auto, exact or object");
    } else if (k == "key") {
      return absl::InvalidArgumentError(
          "rbd uri: a key does not belong in a URI; pass keyring=<file>");
    } else {
      return absl::InvalidArgumentError(absl::StrCat("rbd uri: unknown option '", k, "'"));
    }
  }
  if (uri.cluster.conf.empty() && uri.cluster.mon_host.empty()) {
    // Like the rbd CLI: the standard config location.
    uri.cluster.conf = "/etc/ceph/ceph.conf";
  }
  return uri;
}

StatusOr<std::unique_ptr<Device>> OpenRbdUri(const std::string& rest, bool read_only) {
  ASSIGN_OR_RETURN(RbdUri uri, ParseRbdUri(rest));
  ASSIGN_OR_RETURN(auto cluster, Cluster::Connect(uri.cluster));
  return OpenRbdDevice(std::move(cluster), uri.spec, read_only, uri.diff);
}

}  // namespace vdisk::blockdev::rbd
