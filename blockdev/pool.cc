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

Status UnsupportedError(const Pool& pool, std::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat("pool '", pool.name(), "' (", pool.kind(), ") does not support ", std::string(what)));
}

}  // namespace vdisk::blockdev
