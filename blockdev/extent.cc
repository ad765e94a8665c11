#include "blockdev/extent.h"

#include <algorithm>

namespace vdisk::blockdev {

ExtentList Normalize(ExtentList extents) {
  std::erase_if(extents, [](const Extent& e) { return e.length == 0; });
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  ExtentList out;
  for (const Extent& e : extents) {
    if (!out.empty() && e.offset <= out.back().end()) {
      out.back().length = std::max(out.back().end(), e.end()) - out.back().offset;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

ExtentList Clip(const ExtentList& extents, uint64_t offset, uint64_t length) {
  ExtentList out;
  const uint64_t end = offset + length;
  for (const Extent& e : extents) {
    uint64_t s = std::max(e.offset, offset);
    uint64_t t = std::min(e.end(), end);
    if (s < t) out.push_back({s, t - s});
  }
  return out;
}

ExtentList Union(const ExtentList& a, const ExtentList& b) {
  ExtentList all = a;
  all.insert(all.end(), b.begin(), b.end());
  return Normalize(std::move(all));
}

uint64_t TotalBytes(const ExtentList& extents) {
  uint64_t total = 0;
  for (const Extent& e : extents) total += e.length;
  return total;
}

ExtentList AlignOut(const ExtentList& extents, uint64_t align) {
  ExtentList out;
  out.reserve(extents.size());
  for (const Extent& e : extents) {
    uint64_t s = e.offset & ~(align - 1);
    uint64_t t = (e.end() + align - 1) & ~(align - 1);
    out.push_back({s, t - s});
  }
  return Normalize(std::move(out));
}

}  // namespace vdisk::blockdev
