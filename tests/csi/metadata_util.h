// Reading a SnapshotMetadata stream in tests: every message of GetMetadataAllocated /
// GetMetadataDelta gathered into one list of ranges, with the checks the stream must pass on
// its own (one block_metadata_type and capacity throughout, ranges ascending and disjoint
// across messages, at most max_results per message), and coverage queries on the result.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "csi/client.h"

namespace vdisk::csi::testing {

struct MetadataStream {
  Status status;
  int type = 0;
  int64_t capacity = 0;
  int messages = 0;
  std::vector<std::pair<int64_t, int64_t>> extents;  // (offset, length)

  int64_t bytes() const {
    int64_t n = 0;
    for (const auto& e : extents) n += e.second;
    return n;
  }
  // Every byte of [off, off+len) is reported.
  bool Covers(int64_t off, int64_t len) const {
    int64_t pos = off;
    for (const auto& [o, l] : extents) {
      if (o > pos) break;
      if (o + l > pos) pos = o + l;
      if (pos >= off + len) return true;
    }
    return pos >= off + len;
  }
  // No byte of [off, off+len) is reported.
  bool Avoids(int64_t off, int64_t len) const {
    for (const auto& [o, l] : extents)
      if (o < off + len && off < o + l) return false;
    return true;
  }
};

// Gathers a stream; `cancel_after` > 0 stops reading after that many messages.
template <typename Resp>
struct StreamGatherer {
  MetadataStream out;
  int32_t max_results = 0;
  int cancel_after = 0;
  bool operator()(const Resp& m) {
    if (out.messages == 0) {
      out.type = m.block_metadata_type();
      out.capacity = m.volume_capacity_bytes();
    }
    EXPECT_EQ(m.block_metadata_type(), out.type) << "block_metadata_type changed mid-stream";
    EXPECT_EQ(m.volume_capacity_bytes(), out.capacity) << "volume_capacity_bytes changed mid-stream";
    if (max_results > 0) {
      EXPECT_LE(m.block_metadata_size(), max_results);
    }
    for (const auto& b : m.block_metadata()) {
      EXPECT_GT(b.size_bytes(), 0);
      if (!out.extents.empty()) {
        EXPECT_GE(b.byte_offset(), out.extents.back().first + out.extents.back().second)
            << "ranges overlap or go backwards";
      }
      out.extents.emplace_back(b.byte_offset(), b.size_bytes());
    }
    ++out.messages;
    return cancel_after == 0 || out.messages < cancel_after;
  }
};

inline MetadataStream Allocated(CsiClient& c, const std::string& snap, int64_t start = 0, int32_t max = 0,
                                int cancel_after = 0) {
  ::csi::v1::GetMetadataAllocatedRequest req;
  req.set_snapshot_id(snap);
  req.set_starting_offset(start);
  req.set_max_results(max);
  StreamGatherer<::csi::v1::GetMetadataAllocatedResponse> g;
  g.max_results = max;
  g.cancel_after = cancel_after;
  g.out.status = c.GetMetadataAllocated(req, [&](const auto& m) { return g(m); });
  return g.out;
}

inline MetadataStream Delta(CsiClient& c, const std::string& base, const std::string& target, int64_t start = 0,
                            int32_t max = 0, int cancel_after = 0) {
  ::csi::v1::GetMetadataDeltaRequest req;
  req.set_base_snapshot_id(base);
  req.set_target_snapshot_id(target);
  req.set_starting_offset(start);
  req.set_max_results(max);
  StreamGatherer<::csi::v1::GetMetadataDeltaResponse> g;
  g.max_results = max;
  g.cancel_after = cancel_after;
  g.out.status = c.GetMetadataDelta(req, [&](const auto& m) { return g(m); });
  return g.out;
}

}  // namespace vdisk::csi::testing
