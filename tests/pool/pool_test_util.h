// Small helpers for pool tests: deterministic data patterns written and read through a Device,
// and content digests. Failures are reported as Status so callers can ASSERT on them.
#pragma once

#include <cstdint>
#include <string>

#include "blockdev/device.h"
#include "common/status.h"

namespace vdisk::pooltest {

// Writes `length` bytes of the pattern for `seed` at `offset` (both block-aligned).
Status WritePattern(blockdev::Device& dev, uint64_t offset, uint64_t length, uint64_t seed);
// OK if [offset, offset+length) holds exactly that pattern; DATA_LOSS naming the first
// mismatching offset otherwise.
Status CheckPattern(blockdev::Device& dev, uint64_t offset, uint64_t length, uint64_t seed);
// OK if the range reads as zeroes.
Status CheckZeroes(blockdev::Device& dev, uint64_t offset, uint64_t length);
// SHA-256 (hex) of the device's first `length` bytes (all of it when 0).
StatusOr<std::string> Digest(blockdev::Device& dev, uint64_t length = 0);

}  // namespace vdisk::pooltest
