#include "csi/validation.h"

#include <sys/mount.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "csi/ids.h"
#include "csi/node_attach.h"

namespace vdisk::csi {

using blockdev::AccessMode;
using blockdev::VolumeMode;

Status ValidateName(const std::string& name, const std::string& what) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is required"));
  if (name.size() > kMaxNameBytes)
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", name.size(), " bytes; at most ", kMaxNameBytes, " allowed"));
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    bool banned = (c <= 0x08) || c == 0x0b || c == 0x0c || (c >= 0x0e && c <= 0x1f) || c == 0x7f;
    // U+0080..U+009F are encoded in UTF-8 as C2 80..C2 9F.
    if (c == 0xc2 && i + 1 < name.size()) {
      unsigned char n = static_cast<unsigned char>(name[i + 1]);
      if (n >= 0x80 && n <= 0x9f) banned = true;
    }
    if (banned)
      return absl::InvalidArgumentError(
          absl::StrCat(what, " contains a banned control character at byte ", i));
  }
  return Status();
}

StatusOr<AccessMode> FromCsiAccessMode(int mode) {
  using M = ::csi::v1::VolumeCapability::AccessMode;
  switch (mode) {
    case M::SINGLE_NODE_WRITER: return AccessMode::kSingleNodeWriter;
    case M::SINGLE_NODE_READER_ONLY: return AccessMode::kSingleNodeReaderOnly;
    case M::MULTI_NODE_READER_ONLY: return AccessMode::kMultiNodeReaderOnly;
    case M::MULTI_NODE_SINGLE_WRITER: return AccessMode::kMultiNodeSingleWriter;
    case M::MULTI_NODE_MULTI_WRITER: return AccessMode::kMultiNodeMultiWriter;
    case M::SINGLE_NODE_SINGLE_WRITER: return AccessMode::kSingleNodeSingleWriter;
    case M::SINGLE_NODE_MULTI_WRITER: return AccessMode::kSingleNodeMultiWriter;
    default:
      return absl::InvalidArgumentError(absl::StrCat("access mode ", mode, " is not a known mode"));
  }
}

::csi::v1::VolumeCapability::AccessMode::Mode ToCsiAccessMode(AccessMode mode) {
  using M = ::csi::v1::VolumeCapability::AccessMode;
  switch (mode) {
    case AccessMode::kSingleNodeWriter: return M::SINGLE_NODE_WRITER;
    case AccessMode::kSingleNodeReaderOnly: return M::SINGLE_NODE_READER_ONLY;
    case AccessMode::kMultiNodeReaderOnly: return M::MULTI_NODE_READER_ONLY;
    case AccessMode::kMultiNodeSingleWriter: return M::MULTI_NODE_SINGLE_WRITER;
    case AccessMode::kMultiNodeMultiWriter: return M::MULTI_NODE_MULTI_WRITER;
    case AccessMode::kSingleNodeSingleWriter: return M::SINGLE_NODE_SINGLE_WRITER;
    case AccessMode::kSingleNodeMultiWriter: return M::SINGLE_NODE_MULTI_WRITER;
  }
  return M::UNKNOWN;
}

bool IsReadOnlyAccess(AccessMode mode) {
  return mode == AccessMode::kSingleNodeReaderOnly || mode == AccessMode::kMultiNodeReaderOnly;
}

StatusOr<Capability> ParseCapability(const ::csi::v1::VolumeCapability& cap, const std::string& what) {
  Capability out;
  switch (cap.access_type_case()) {
    case ::csi::v1::VolumeCapability::kBlock:
      out.mode = VolumeMode::kBlock;
      break;
    case ::csi::v1::VolumeCapability::kMount:
      out.mode = VolumeMode::kFilesystem;
      out.fs_type = cap.mount().fs_type();
      out.mount_flags.assign(cap.mount().mount_flags().begin(), cap.mount().mount_flags().end());
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(what, ": access_type (block or mount) is required"));
  }
  if (!cap.has_access_mode() || cap.access_mode().mode() == ::csi::v1::VolumeCapability::AccessMode::UNKNOWN)
    return absl::InvalidArgumentError(absl::StrCat(what, ": access_mode is required"));
  auto mode = FromCsiAccessMode(cap.access_mode().mode());
  if (!mode.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", mode.status().message()));
  out.access = *mode;
  if (out.mode == VolumeMode::kFilesystem) {
    auto bits = MountFlagBits(out.mount_flags);
    if (!bits.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", bits.status().message()));
  }
  return out;
}

StatusOr<CapabilitySet> ParseCapabilities(
    const google::protobuf::RepeatedPtrField<::csi::v1::VolumeCapability>& caps, const std::string& what) {
  if (caps.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is required"));
  CapabilitySet set;
  for (int i = 0; i < caps.size(); ++i) {
    ASSIGN_OR_RETURN(Capability c, ParseCapability(caps[i], absl::StrCat(what, "[", i, "]")));
    if (i == 0) {
      set.mode = c.mode;
    } else if (c.mode != set.mode) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " mixes block and mount access types; a vdisk volume is one or the other"));
    }
    if (std::find(set.access_modes.begin(), set.access_modes.end(), c.access) == set.access_modes.end())
      set.access_modes.push_back(c.access);
    set.items.push_back(std::move(c));
  }
  return set;
}

bool IsSupported(const blockdev::Capabilities& pool_caps, VolumeMode mode,
                 const std::vector<AccessMode>& access_modes, std::string* why) {
  if (std::find(pool_caps.modes.begin(), pool_caps.modes.end(), mode) == pool_caps.modes.end()) {
    if (why) *why = absl::StrCat("the pool does not serve ", std::string(blockdev::ToString(mode)), " volumes");
    return false;
  }
  const auto& allowed =
      mode == VolumeMode::kBlock ? pool_caps.block_access_modes : pool_caps.filesystem_access_modes;
  for (AccessMode a : access_modes) {
    if (std::find(allowed.begin(), allowed.end(), a) == allowed.end()) {
      if (why)
        *why = absl::StrCat("access mode ", std::string(blockdev::ToString(a)), " is not supported for ",
                            std::string(blockdev::ToString(mode)), " volumes of this pool");
      return false;
    }
  }
  return true;
}

Status CheckSupported(const blockdev::Capabilities& pool_caps, VolumeMode mode,
                      const std::vector<AccessMode>& access_modes) {
  std::string why;
  if (!IsSupported(pool_caps, mode, access_modes, &why)) return absl::InvalidArgumentError(why);
  return Status();
}

namespace {
uint64_t RoundUp(uint64_t v, uint64_t g) { return (v + g - 1) / g * g; }
uint64_t RoundDown(uint64_t v, uint64_t g) { return v / g * g; }
}  // namespace

StatusOr<uint64_t> ChooseCapacity(const ::csi::v1::CapacityRange* range, uint64_t granularity,
                                  uint64_t default_bytes, uint64_t max_bytes, uint64_t min_bytes) {
  const uint64_t g = granularity == 0 ? 1 : granularity;
  int64_t req = range ? range->required_bytes() : 0;
  int64_t lim = range ? range->limit_bytes() : 0;
  if (req < 0 || lim < 0)
    return absl::InvalidArgumentError("capacity_range: required_bytes and limit_bytes must not be negative");
  if (lim > 0 && req > lim)
    return absl::InvalidArgumentError(
        absl::StrCat("capacity_range: limit_bytes ", lim, " is smaller than required_bytes ", req));
  const uint64_t required = static_cast<uint64_t>(req);
  const uint64_t limit = static_cast<uint64_t>(lim);
  const uint64_t lower = std::max(required, min_bytes);
  if (limit > 0 && lower > limit)
    return absl::OutOfRangeError(absl::StrCat("the content source needs ", min_bytes,
                                              " bytes, more than limit_bytes ", limit));
  uint64_t want = lower;
  if (required == 0) {
    want = std::max(min_bytes, default_bytes);
    if (min_bytes > 0) want = min_bytes;  // a copy of a source keeps the source's size
    if (limit > 0) want = std::min(want, limit);
    want = std::max(want, lower);
  }
  if (want > UINT64_MAX - g) return absl::OutOfRangeError("capacity too large");
  uint64_t size = RoundUp(std::max<uint64_t>(want, 1), g);
  if (limit > 0 && size > limit) {
    size = RoundDown(limit, g);
    if (size == 0 || size < lower)
      return absl::OutOfRangeError(absl::StrCat("no size in [", lower, ", ", limit,
                                                "] is a multiple of the pool's granularity ", g));
  }
  if (max_bytes > 0 && size > max_bytes)
    return absl::OutOfRangeError(
        absl::StrCat("capacity ", size, " exceeds the pool's maximum volume size ", max_bytes));
  if (size > static_cast<uint64_t>(INT64_MAX)) return absl::OutOfRangeError("capacity too large");
  return size;
}

StatusOr<std::string> PoolFromParams(const blockdev::Params& params, const std::string& default_pool) {
  auto it = params.find(kPoolParam);
  std::string pool = it == params.end() || it->second.empty() ? default_pool : it->second;
  if (pool.empty()) return absl::FailedPreconditionError("no pool is configured");
  if (!IsValidPoolName(pool))
    return absl::InvalidArgumentError(absl::StrCat("parameter pool='", pool, "' is not a valid pool name"));
  return pool;
}

blockdev::Params PoolParams(const blockdev::Params& params) {
  blockdev::Params out;
  for (const auto& [k, v] : params) {
    if (k == kPoolParam || k.starts_with(kCoParamPrefix) || IsAttachParam(k)) continue;
    out[k] = v;
  }
  return out;
}

StatusOr<unsigned long> MountFlagBits(const std::vector<std::string>& flags) {
  unsigned long bits = 0;
  for (const auto& f : flags) {
    if (f == "ro") bits |= MS_RDONLY;
    else if (f == "nosuid") bits |= MS_NOSUID;
    else if (f == "nodev") bits |= MS_NODEV;
    else if (f == "noexec") bits |= MS_NOEXEC;
    else if (f == "noatime") bits |= MS_NOATIME;
    else if (f == "nodiratime") bits |= MS_NODIRATIME;
    else if (f == "relatime") bits |= MS_RELATIME;
    else if (f == "strictatime") bits |= MS_STRICTATIME;
    else if (f == "rw" || f == "bind" || f == "rbind" || f == "defaults") continue;
    else {
      std::string name = f.substr(0, f.find('='));
      if (name.size() > 32) name = name.substr(0, 32) + "...";
      return absl::InvalidArgumentError(
          absl::StrCat("mount flag '", name, "' is not supported on a vdisk bind mount"));
    }
  }
  return bits;
}

blockdev::Params ToParams(const google::protobuf::Map<std::string, std::string>& map) {
  return blockdev::Params(map.begin(), map.end());
}

}  // namespace vdisk::csi
