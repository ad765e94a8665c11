// The in-memory chunk index: where each chunk id lives (pack, offset, length). Built from the
// repository's index objects plus the trailers of packs no index lists yet. Not thread-safe:
// build it, then share it read-only (the backup pipeline keeps its own locked set of ids it
// added in this session).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "backup/repo/crypto.h"
#include "backup/repo/pack_format.h"

namespace vdisk::backup {

struct ChunkLocation {
  uint32_t pack = 0;  // index into ChunkIndex::packs()
  uint32_t length = 0;
  uint64_t offset = 0;
  uint32_t raw_length = 0;
};

class ChunkIndex {
 public:
  struct Pack {
    std::string name;
    uint64_t size = 0;
  };

  // Adds a pack and its entries; a chunk already known keeps its first location.
  void AddPack(const PackRecord& record) {
    uint32_t p = static_cast<uint32_t>(packs_.size());
    auto [it, inserted] = pack_numbers_.emplace(record.name, p);
    if (!inserted) return;  // same pack listed by two indexes
    packs_.push_back({record.name, record.size});
    for (const auto& e : record.entries)
      chunks_.emplace(e.id, ChunkLocation{p, e.length, e.offset, e.raw_length});
  }

  const ChunkLocation* Find(const ChunkId& id) const {
    auto it = chunks_.find(id);
    return it == chunks_.end() ? nullptr : &it->second;
  }
  bool HasPack(const std::string& name) const { return pack_numbers_.contains(name); }
  const std::vector<Pack>& packs() const { return packs_; }
  const std::unordered_map<ChunkId, ChunkLocation, ChunkIdHash>& chunks() const {
    return chunks_;
  }

 private:
  std::vector<Pack> packs_;
  std::unordered_map<std::string, uint32_t> pack_numbers_;
  std::unordered_map<ChunkId, ChunkLocation, ChunkIdHash> chunks_;
};

}  // namespace vdisk::backup
