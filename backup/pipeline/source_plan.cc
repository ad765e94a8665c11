#include "backup/pipeline/source_plan.h"

namespace vdisk::backup {

std::vector<bool> ChunksTouched(const blockdev::ExtentList& extents, uint64_t size_bytes,
                                uint32_t chunk_size) {
  const uint64_t n = (size_bytes + chunk_size - 1) / chunk_size;
  std::vector<bool> touched(n, false);
  for (const auto& e : extents) {
    if (e.length == 0 || e.offset >= size_bytes) continue;
    uint64_t end = std::min(e.end(), size_bytes);
    for (uint64_t c = e.offset / chunk_size; c * chunk_size < end; ++c) touched[c] = true;
  }
  return touched;
}

SourcePlan PlanChunks(uint64_t size_bytes, uint32_t chunk_size,
                      const blockdev::ExtentList& allocated,
                      const std::optional<blockdev::ExtentList>& changed,
                      const DiskBackup* parent, const ChunkIndex& index) {
  SourcePlan plan;
  const std::vector<bool> alloc = ChunksTouched(allocated, size_bytes, chunk_size);
  const uint64_t n = alloc.size();
  const bool incremental = changed.has_value() && parent != nullptr &&
                           parent->chunk_size == chunk_size && parent->size_bytes <= size_bytes;
  if (!incremental) {
    for (uint64_t c = 0; c < n; ++c)
      if (alloc[c]) plan.read.push_back(static_cast<uint32_t>(c));
    return plan;
  }
  plan.used_change_map = true;
  std::vector<bool> dirty = ChunksTouched(*changed, size_bytes, chunk_size);
  // Everything past the parent's end is new; a partial last chunk of the parent has changed
  // length, so it is re-read too.
  for (uint64_t c = parent->size_bytes / chunk_size; c < n; ++c) dirty[c] = true;
  std::vector<const ChunkRef*> from_parent(n, nullptr);
  for (const auto& ref : parent->chunks)
    if (ref.index < n) from_parent[ref.index] = &ref;
  for (uint64_t c = 0; c < n; ++c) {
    if (dirty[c]) {
      if (alloc[c]) plan.read.push_back(static_cast<uint32_t>(c));
      continue;  // changed and now unallocated: a hole
    }
    const ChunkRef* ref = from_parent[c];
    if (!ref) continue;  // a hole before, unchanged: still a hole
    if (!index.Find(ref->id)) {
      ++plan.inherited_missing;
      if (alloc[c]) plan.read.push_back(static_cast<uint32_t>(c));
      continue;
    }
    plan.inherited.push_back(*ref);
  }
  return plan;
}

}  // namespace vdisk::backup
