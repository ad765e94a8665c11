// Multipart part sizing under S3's limits: parts of 5 MiB .. 5 GiB (the last may be smaller),
// at most 10,000 parts, objects up to 5 TiB. Pure functions.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace vdisk::backup::s3 {

inline constexpr uint64_t kMinPartSize = 5ull << 20;
inline constexpr uint64_t kMaxPartSize = 5ull << 30;
inline constexpr uint64_t kMaxParts = 10000;
inline constexpr uint64_t kMaxObjectSize = 5ull << 40;

// The part size for an object of `object_size` bytes: at least max(preferred, 5 MiB), large
// enough for the object to fit in 10,000 parts, rounded up to a whole MiB.
// OUT_OF_RANGE above 5 TiB.
StatusOr<uint64_t> PartSizeFor(uint64_t object_size, uint64_t preferred = 8ull << 20);

// Number of parts `object_size` splits into with `part_size` (at least 1).
uint64_t PartCount(uint64_t object_size, uint64_t part_size);

}  // namespace vdisk::backup::s3
