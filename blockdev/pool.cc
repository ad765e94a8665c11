#include "blockdev/pool.h"

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev {

std::string_view ToString(VolumeMode mode) {
  return mode == VolumeMode::kBlock ? "block" : "filesystem";
}

std::string_view ToString(AccessMode mode) {
  switch (mode) {
    case AccessMode::kSingleNodeWriter: return "SINGLE_NODE_WRITER";
    case AccessMode::kSingleNodeReaderOnly: return "SINGLE_NODE_READER_ONLY";
    case AccessMode::kMultiNodeReaderOnly: return "MULTI_NODE_READER_ONLY";
    case AccessMode::kMultiNodeSingleWriter: return "MULTI_NODE_SINGLE_WRITER";
    case AccessMode::kMultiNodeMultiWriter: return "MULTI_NODE_MULTI_WRITER";
    case AccessMode::kSingleNodeSingleWriter: return "SINGLE_NODE_SINGLE_WRITER";
    case AccessMode::kSingleNodeMultiWriter: return "SINGLE_NODE_MULTI_WRITER";
  }
  return "UNKNOWN";
}

StatusOr<VolumeMode> ParseVolumeMode(const std::string& s) {
  if (s == "block") return VolumeMode::kBlock;
  if (s == "filesystem") return VolumeMode::kFilesystem;
  return absl::InvalidArgumentError(absl::StrCat("unknown volume mode '", s, "'"));
}

StatusOr<AccessMode> ParseAccessMode(const std::string& s) {
  for (AccessMode m : {AccessMode::kSingleNodeWriter, AccessMode::kSingleNodeReaderOnly,
                       AccessMode::kMultiNodeReaderOnly, AccessMode::kMultiNodeSingleWriter,
                       AccessMode::kMultiNodeMultiWriter, AccessMode::kSingleNodeSingleWriter,
                       AccessMode::kSingleNodeMultiWriter})
    if (ToString(m) == s) return m;
  return absl::InvalidArgumentError(absl::StrCat("unknown access mode '", s, "'"));
}

std::string_view ToString(VolumeSource::Kind kind) {
  switch (kind) {
    case VolumeSource::Kind::kNone: return "none";
    case VolumeSource::Kind::kSnapshot: return "snapshot";
    case VolumeSource::Kind::kVolume: return "volume";
  }
  return "none";
}

StatusOr<VolumeSource::Kind> ParseSourceKind(const std::string& s) {
  for (auto k : {VolumeSource::Kind::kNone, VolumeSource::Kind::kSnapshot, VolumeSource::Kind::kVolume})
    if (ToString(k) == s) return k;
  return absl::InvalidArgumentError(absl::StrCat("unknown content source kind '", s, "'"));
}

Status UnsupportedError(const Pool& pool, std::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat("pool '", pool.name(), "' (", pool.kind(), ") does not support ", std::string(what)));
}

}  // namespace vdisk::blockdev
