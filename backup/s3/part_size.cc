#include "backup/s3/part_size.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vdisk::backup::s3 {

StatusOr<uint64_t> PartSizeFor(uint64_t object_size, uint64_t preferred) {
  if (object_size > kMaxObjectSize)
    return absl::OutOfRangeError(
        absl::StrCat("object of ", object_size, " bytes exceeds S3's 5 TiB limit"));
  constexpr uint64_t kMiB = 1ull << 20;
  uint64_t part = std::max(preferred, kMinPartSize);
  uint64_t needed = (object_size + kMaxParts - 1) / kMaxParts;
  part = std::max(part, needed);
  part = (part + kMiB - 1) / kMiB * kMiB;
  return std::min(part, kMaxPartSize);
}

uint64_t PartCount(uint64_t object_size, uint64_t part_size) {
  if (object_size == 0) return 1;
  return (object_size + part_size - 1) / part_size;
}

}  // namespace vdisk::backup::s3
