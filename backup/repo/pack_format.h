// Pack objects and index objects (see backup/FORMAT.md).
//
// A pack is   blob_0 .. blob_n-1 | sealed trailer | u32 trailer_length | "VDPACK01"
// The trailer lists every blob (chunk id, offset, length, raw length), sealed under the data
// key with the pack name as associated data, so a pack describes itself: a backup that
// crashed after uploading packs but before writing its index can be resumed by reading the
// packs' trailers (ranged GET of the tail).
//
// An index object lists many packs and their entries (sealed, name-bound the same way); the
// repository's in-memory chunk index is the union of all index objects.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backup/repo/crypto.h"
#include "common/status.h"

namespace vdisk::backup {

struct PackEntry {
  ChunkId id;
  uint64_t offset = 0;      // of the blob within the pack
  uint32_t length = 0;      // blob bytes (sealed)
  uint32_t raw_length = 0;  // chunk bytes after decoding
  bool operator==(const PackEntry&) const = default;
};

struct PackRecord {
  std::string name;   // object key suffix: the pack's id (64 hex)
  uint64_t size = 0;  // whole pack object size
  std::vector<PackEntry> entries;
  bool operator==(const PackRecord&) const = default;
};

inline constexpr size_t kPackFooterBytes = 12;

// The sealed trailer plus footer to append after the last blob.
std::string EncodePackTail(const RepoKeys& keys, const std::string& pack_name,
                           const std::vector<PackEntry>& entries);
// The trailer length from the last kPackFooterBytes bytes; DATA_LOSS if not a pack footer.
StatusOr<uint32_t> ParsePackFooter(std::string_view footer);
// The entries from the sealed trailer; DATA_LOSS if it does not authenticate.
StatusOr<std::vector<PackEntry>> DecodePackTrailer(const RepoKeys& keys,
                                                   const std::string& pack_name,
                                                   std::string_view sealed_trailer);

std::string EncodeIndex(const RepoKeys& keys, const std::string& index_name,
                        const std::vector<PackRecord>& packs);
StatusOr<std::vector<PackRecord>> DecodeIndex(const RepoKeys& keys, const std::string& index_name,
                                              std::string_view data);

}  // namespace vdisk::backup
