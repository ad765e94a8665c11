#include "snapshot/changed_blocks.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"

namespace vdisk::snapshot {

using blockdev::Device;
using blockdev::Extent;
using blockdev::ExtentList;
using blockdev::Pool;

std::string_view ToString(ChangeMapSource s) {
  switch (s) {
    case ChangeMapSource::kPool: return "pool";
    case ChangeMapSource::kReadCompare: return "read-compare";
    case ChangeMapSource::kAllocation: return "allocation";
  }
  return "unknown";
}

namespace {

bool PowerOfTwo(uint64_t v) { return v && !(v & (v - 1)); }

Status CheckOptions(const ChangedBlocksOptions& o) {
  if (!PowerOfTwo(o.granularity) || o.granularity < 512)
    return absl::InvalidArgumentError("granularity must be a power of two >= 512");
  if (o.chunk_bytes < o.granularity || o.chunk_bytes % o.granularity)
    return absl::InvalidArgumentError("chunk_bytes must be a multiple of granularity");
  if (o.queue_depth == 0) return absl::InvalidArgumentError("queue_depth must be > 0");
  return Status();
}

bool Cancelled(const ChangedBlocksOptions& o) {
  return (o.cancel && o.cancel->load()) || (o.is_cancelled && o.is_cancelled());
}

ExtentList Finish(const ExtentList& raw, uint64_t granularity, uint64_t size) {
  return blockdev::Clip(blockdev::AlignOut(blockdev::Normalize(raw), granularity), 0, size);
}

// One chunk being compared: the same range read from both devices.
struct Slot {
  blockdev::AlignedBuffer a, b;
  uint64_t offset = 0, length = 0;
  int pending_a = 0, pending_b = 0;  // reads outstanding on the base / target queue
  Status status;
};

}  // namespace

StatusOr<ChangeMap> CompareDevices(Device& base, Device& target, const ChangedBlocksOptions& o) {
  RETURN_IF_ERROR(CheckOptions(o));
  const uint64_t size = target.size();
  const uint64_t base_size = std::min(base.size(), size);
  uint64_t unit = std::max<uint64_t>({o.granularity, base.block_size(), target.block_size()});
  if (!PowerOfTwo(unit)) return absl::InvalidArgumentError("device block sizes are not powers of two");
  const uint64_t chunk = std::max<uint64_t>(o.chunk_bytes / unit * unit, unit);

  // Only ranges that may hold data on either side can differ.
  ASSIGN_OR_RETURN(ExtentList in_target, target.allocated(0, size));
  ExtentList in_base;
  if (base_size > 0) {
    ASSIGN_OR_RETURN(in_base, base.allocated(0, base_size));
  }
  ExtentList todo = Finish(blockdev::Union(blockdev::Normalize(in_target),
                                           blockdev::Normalize(in_base)),
                           unit, size);

  std::vector<Extent> chunks;
  for (const auto& e : todo)
    for (uint64_t off = e.offset; off < e.end(); off += chunk)
      chunks.push_back({off, std::min(chunk, e.end() - off)});

  ChangeMap out;
  out.size_bytes = size;
  out.source = ChangeMapSource::kReadCompare;
  if (chunks.empty()) return out;

  const unsigned depth = std::min<unsigned>(o.queue_depth, chunks.size());
  // Buffers first: the queues (declared after) are destroyed first and wait for their reads.
  const size_t align = std::max<size_t>({4096, base.buffer_alignment(), target.buffer_alignment()});
  std::vector<Slot> slots(depth);
  for (auto& s : slots) {
    s.a = blockdev::AlignedBuffer(chunk, align);
    s.b = blockdev::AlignedBuffer(chunk, align);
  }
  ASSIGN_OR_RETURN(auto qa, base.open_queue(depth));
  ASSIGN_OR_RETURN(auto qb, target.open_queue(depth));
  std::deque<unsigned> inflight, free_slots;
  for (unsigned i = 0; i < depth; ++i) free_slots.push_back(i);
  ExtentList changed;
  size_t next = 0;

  while (next < chunks.size() || !inflight.empty()) {
    if (Cancelled(o)) {
      // Let what is in flight land before the buffers go away.
      qa->drain().IgnoreError();
      qb->drain().IgnoreError();
      return absl::CancelledError("change map cancelled");
    }
    bool issued = false;
    while (next < chunks.size() && !free_slots.empty()) {
      unsigned i = free_slots.front();
      free_slots.pop_front();
      Slot& s = slots[i];
      s.offset = chunks[next].offset;
      s.length = chunks[next].length;
      s.status = Status();
      ++next;
      auto record = [&s](Status st) {
        if (!st.ok() && s.status.ok()) s.status = std::move(st);
      };
      // Base side: what lies past its end reads as zeroes.
      uint64_t a_len = s.offset < base_size ? std::min(s.length, base_size - s.offset) : 0;
      if (a_len < s.length) std::memset(s.a.data() + a_len, 0, s.length - a_len);
      if (a_len > 0) {
        s.pending_a = 1;
        qa->read(s.offset, std::span<std::byte>(s.a.data(), a_len), [&s, record](Status st) {
          record(std::move(st));
          s.pending_a = 0;
        });
      }
      s.pending_b = 1;
      qb->read(s.offset, std::span<std::byte>(s.b.data(), s.length), [&s, record](Status st) {
        record(std::move(st));
        s.pending_b = 0;
      });
      inflight.push_back(i);
      issued = true;
    }
    if (issued) {
      RETURN_IF_ERROR(qa->submit());
      RETURN_IF_ERROR(qb->submit());
    }
    // Wait for the oldest chunk, then compare it.
    Slot& head = slots[inflight.front()];
    while (head.pending_a > 0) {
      auto n = qa->poll(1, -1);
      if (!n.ok()) return n.status();
    }
    while (head.pending_b > 0) {
      auto n = qb->poll(1, -1);
      if (!n.ok()) return n.status();
    }
    if (!head.status.ok())
      return Annotate(head.status, absl::StrCat("change map: reading [", head.offset, ", +",
                                                head.length, ")"));
    out.bytes_read += 2 * head.length;
    for (uint64_t i = 0; i < head.length; i += unit) {
      uint64_t n = std::min(unit, head.length - i);
      if (std::memcmp(head.a.data() + i, head.b.data() + i, n) != 0) {
        if (!changed.empty() && changed.back().end() == head.offset + i)
          changed.back().length += n;
        else
          changed.push_back({head.offset + i, n});
      }
    }
    free_slots.push_back(inflight.front());
    inflight.pop_front();
  }
  out.extents = Finish(changed, o.granularity, size);
  return out;
}

StatusOr<ChangeMap> ChangedBlocksBetween(Device& base, Device& target,
                                         const ChangedBlocksOptions& o) {
  RETURN_IF_ERROR(CheckOptions(o));
  auto own = target.changed_since(base);
  if (own.ok()) {
    ChangeMap out;
    out.size_bytes = target.size();
    out.source = ChangeMapSource::kPool;
    out.extents = Finish(*own, o.granularity, target.size());
    return out;
  }
  if (!absl::IsUnimplemented(own.status())) return own.status();
  if (!o.allow_read_compare)
    return absl::UnimplementedError(absl::StrCat(target.describe(), " has no change map against ",
                                                 base.describe(), " and read-compare is disabled"));
  return CompareDevices(base, target, o);
}

StatusOr<ChangeMap> AllocatedBlocks(Pool& pool, const std::string& id,
                                    const ChangedBlocksOptions& o) {
  RETURN_IF_ERROR(CheckOptions(o));
  if (id.empty()) return absl::InvalidArgumentError("snapshot id is empty");
  ASSIGN_OR_RETURN(auto snap, pool.get_snapshot(id));
  ChangeMap out;
  out.size_bytes = snap.size_bytes;
  out.source = ChangeMapSource::kAllocation;
  auto from_pool = pool.changed_extents("", id);
  if (from_pool.ok()) {
    out.extents = Finish(*from_pool, o.granularity, snap.size_bytes);
    return out;
  }
  if (!absl::IsUnimplemented(from_pool.status())) return from_pool.status();
  ASSIGN_OR_RETURN(auto dev, pool.open_snapshot(id));
  ASSIGN_OR_RETURN(ExtentList allocated, dev->allocated(0, snap.size_bytes));
  out.extents = Finish(allocated, o.granularity, snap.size_bytes);
  return out;
}

StatusOr<ChangeMap> ChangedBlocks(Pool& pool, const std::string& base_id, const std::string& id,
                                  const ChangedBlocksOptions& o) {
  RETURN_IF_ERROR(CheckOptions(o));
  if (base_id.empty()) return AllocatedBlocks(pool, id, o);
  if (id.empty()) return absl::InvalidArgumentError("snapshot id is empty");
  ASSIGN_OR_RETURN(auto base, pool.get_snapshot(base_id));
  ASSIGN_OR_RETURN(auto target, pool.get_snapshot(id));
  if (base.source_volume_id != target.source_volume_id)
    return absl::InvalidArgumentError(absl::StrCat("snapshots ", base_id, " and ", id,
                                                   " are of different volumes"));
  if (pool.capabilities().changed_extents) {
    auto from_pool = pool.changed_extents(base_id, id);
    if (from_pool.ok()) {
      ChangeMap out;
      out.size_bytes = target.size_bytes;
      out.source = ChangeMapSource::kPool;
      out.extents = Finish(*from_pool, o.granularity, target.size_bytes);
      return out;
    }
    if (!absl::IsUnimplemented(from_pool.status())) return from_pool.status();
  }
  if (!o.allow_read_compare)
    return absl::UnimplementedError(absl::StrCat(
        "pool '", pool.name(), "' cannot compute change maps and read-compare is disabled"));
  ASSIGN_OR_RETURN(auto base_dev, pool.open_snapshot(base_id));
  ASSIGN_OR_RETURN(auto target_dev, pool.open_snapshot(id));
  return CompareDevices(*base_dev, *target_dev, o);
}

}  // namespace vdisk::snapshot
