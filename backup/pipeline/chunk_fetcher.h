// Parallel retrieval of many chunks: groups the wanted blobs by pack, coalesces neighbours into
// ranged reads of up to `max_range_bytes`, runs `parallel` reads at once, decodes (decrypt,
// decompress, verify the keyed hash) each blob, and hands the result to `sink` — from the
// fetching threads, concurrently. A blob that fails to decode reaches the sink with its
// DATA_LOSS status (the fetch goes on); a read that fails after the store's retries, or a sink
// error, stops the fetch and is returned.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "backup/repo/chunk_index.h"
#include "backup/repo/repository.h"

namespace vdisk::backup {

struct FetchItem {
  ChunkId id;
  ChunkLocation location;
  uint64_t tag = 0;  // the caller's
};

struct FetchOptions {
  unsigned parallel = 8;
  uint64_t max_range_bytes = 16ull << 20;
  uint64_t max_gap_bytes = 1ull << 20;  // read across gaps up to this size
  bool decode = true;                   // false: only check the blob is retrievable
};

using FetchSink = std::function<Status(const FetchItem& item, Status status, std::string& data)>;

// Items are fetched in order of their position in `items` as far as grouping allows.
Status FetchChunks(const Repository& repo, const ChunkIndex& index, std::vector<FetchItem> items,
                   const FetchOptions& options, const FetchSink& sink,
                   std::atomic<uint64_t>* bytes_fetched = nullptr,
                   const std::atomic<bool>* cancel = nullptr);

}  // namespace vdisk::backup
