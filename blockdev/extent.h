// A byte range of a disk, and small operations on sorted lists of them.
#pragma once

#include <cstdint>
#include <vector>

namespace vdisk::blockdev {

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  bool operator==(const Extent&) const = default;
};

// Sorted, non-overlapping, non-adjacent extents (adjacent ones merged).
using ExtentList = std::vector<Extent>;

// Sorts and merges overlapping / adjacent extents.
ExtentList Normalize(ExtentList extents);

// Clips every extent to [offset, offset + length).
ExtentList Clip(const ExtentList& extents, uint64_t offset, uint64_t length);

// Union of two normalized lists.
ExtentList Union(const ExtentList& a, const ExtentList& b);

// Total bytes covered.
uint64_t TotalBytes(const ExtentList& extents);

// Rounds every extent outward to `align` (a power of two) and re-normalizes.
ExtentList AlignOut(const ExtentList& extents, uint64_t align);

}  // namespace vdisk::blockdev
