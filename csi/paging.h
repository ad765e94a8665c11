// Paging tokens for ListVolumes / ListSnapshots.
//
// A token is the key of the last entry a page returned (pool name + pool-local id), plus the
// listing it belongs to, wrapped with a checksum and web-safe base64. The next page starts at the
// first entry whose key sorts after it, so deleting or adding objects between pages never
// duplicates an entry (and never loses one that existed on both calls). Tokens survive a driver
// restart. Anything that is not a token we issued for this listing is ABORTED, as the CSI spec
// requires for an invalid starting_token. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace vdisk::csi {

// The sort key of a listed object.
struct ListKey {
  std::string pool;
  std::string local_id;
  auto operator<=>(const ListKey&) const = default;
};

// `listing` distinguishes token spaces ("volumes", "snapshots").
std::string EncodePageToken(const std::string& listing, const ListKey& last);

// ABORTED for a malformed token or one issued for another listing.
StatusOr<ListKey> DecodePageToken(const std::string& listing, const std::string& token);

struct PageWindow {
  size_t begin = 0;  // first index to return
  size_t end = 0;    // one past the last index to return
  std::string next_token;  // empty when [begin, end) reaches the end of `keys`
};

// Chooses the page of the sorted `keys` that starts after `starting_token` (empty: from the
// beginning) and holds at most `max_entries` entries (0: all). INVALID_ARGUMENT for a negative
// max_entries, ABORTED for a bad token.
StatusOr<PageWindow> SelectPage(const std::string& listing, const std::vector<ListKey>& keys,
                                int32_t max_entries, const std::string& starting_token);

}  // namespace vdisk::csi
