#include "csi/paging.h"

#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vdisk::csi {

namespace {

constexpr char kSep = '\x1f';
constexpr char kTokenVersion[] = "t1";

std::string Checksum(const std::string& payload) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), md);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), 6));
}

Status BadToken(const std::string& token) {
  std::string shown = token.substr(0, 64);
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return absl::AbortedError(
      absl::StrCat("starting_token '", shown, "' is not a token this driver issued"));
}

}  // namespace

std::string EncodePageToken(const std::string& listing, const ListKey& last) {
  std::string payload =
      absl::StrCat(kTokenVersion, std::string(1, kSep), listing, std::string(1, kSep), last.pool,
                   std::string(1, kSep), last.local_id);
  std::string raw = absl::StrCat(payload, std::string(1, kSep), Checksum(payload));
  std::string out;
  absl::WebSafeBase64Escape(raw, &out);
  return out;
}

StatusOr<ListKey> DecodePageToken(const std::string& listing, const std::string& token) {
  std::string raw;
  if (token.empty() || token.size() > 1024 || !absl::WebSafeBase64Unescape(token, &raw))
    return BadToken(token);
  std::vector<std::string> parts = absl::StrSplit(raw, kSep);
  if (parts.size() != 5) return BadToken(token);
  std::string payload = absl::StrCat(parts[0], std::string(1, kSep), parts[1],
                                     std::string(1, kSep), parts[2], std::string(1, kSep), parts[3]);
  if (parts[0] != kTokenVersion || parts[4] != Checksum(payload)) return BadToken(token);
  if (parts[1] != listing)
    return absl::AbortedError(absl::StrCat("starting_token was issued for ", parts[1],
                                           ", not for ", listing));
  return ListKey{parts[2], parts[3]};
}

StatusOr<PageWindow> SelectPage(const std::string& listing, const std::vector<ListKey>& keys,
                                int32_t max_entries, const std::string& starting_token) {
  if (max_entries < 0)
    return absl::InvalidArgumentError(absl::StrCat("max_entries must not be negative, got ", max_entries));
  PageWindow w;
  if (!starting_token.empty()) {
    ASSIGN_OR_RETURN(ListKey after, DecodePageToken(listing, starting_token));
    w.begin = std::upper_bound(keys.begin(), keys.end(), after) - keys.begin();
  }
  w.end = keys.size();
  if (max_entries > 0 && w.end - w.begin > static_cast<size_t>(max_entries)) {
    w.end = w.begin + max_entries;
    w.next_token = EncodePageToken(listing, keys[w.end - 1]);
  }
  return w;
}

}  // namespace vdisk::csi
