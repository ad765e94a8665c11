#include "csi/paging.h"

#include <gtest/gtest.h>

namespace vdisk::csi {
namespace {

std::vector<ListKey> Keys(int n) {
  std::vector<ListKey> k;
  for (int i = 0; i < n; ++i) k.push_back({"local", "vol-" + std::to_string(10 + i)});
  return k;
}

TEST(Paging, TokenRoundTrip) {
  std::string t = EncodePageToken("volumes", {"local", "vol-1"});
  auto k = DecodePageToken("volumes", t);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->pool, "local");
  EXPECT_EQ(k->local_id, "vol-1");
}

TEST(Paging, BadTokensAreAborted) {
  for (const char* bad : {"invalid-token", "x", "AAAA", "%%%", "dDEfdm9sdW1lcx9sb2NhbB92"}) {
    EXPECT_EQ(DecodePageToken("volumes", bad).status().code(), absl::StatusCode::kAborted) << bad;
  }
  // A token for another listing is refused too.
  std::string t = EncodePageToken("snapshots", {"local", "s"});
  EXPECT_EQ(DecodePageToken("volumes", t).status().code(), absl::StatusCode::kAborted);
  // A tampered token fails its checksum.
  std::string tampered = EncodePageToken("volumes", {"local", "vol-1"});
  tampered[5] = tampered[5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(DecodePageToken("volumes", tampered).status().code(), absl::StatusCode::kAborted);
}

TEST(Paging, WalksAllPagesWithoutDuplicates) {
  auto keys = Keys(5);
  std::vector<ListKey> seen;
  std::string token;
  int pages = 0;
  do {
    auto w = SelectPage("volumes", keys, 2, token);
    ASSERT_TRUE(w.ok()) << w.status();
    for (size_t i = w->begin; i < w->end; ++i) seen.push_back(keys[i]);
    token = w->next_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, keys);
}

TEST(Paging, TokenThenNoLimitReturnsTheRest) {
  auto keys = Keys(7);
  auto first = SelectPage("snapshots", keys, 2, "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->end - first->begin, 2u);
  auto rest = SelectPage("snapshots", keys, 0, first->next_token);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->end - rest->begin, 5u);
  EXPECT_TRUE(rest->next_token.empty());
}

TEST(Paging, DeletionBetweenPagesNeitherDuplicatesNorSkips) {
  auto keys = Keys(6);
  auto first = SelectPage("volumes", keys, 3, "");
  ASSERT_TRUE(first.ok());
  // The last entry of the page is deleted, and a new one sorts before the token.
  auto after = keys;
  after.erase(after.begin() + 2);
  after.insert(after.begin(), ListKey{"local", "vol-00"});
  auto second = SelectPage("volumes", after, 0, first->next_token);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->end - second->begin, 3u);
  EXPECT_EQ(after[second->begin].local_id, "vol-13");
}

TEST(Paging, ExactFitHasNoNextToken) {
  auto keys = Keys(2);
  auto w = SelectPage("volumes", keys, 2, "");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->next_token.empty());
}

TEST(Paging, NegativeMaxEntriesIsInvalid) {
  EXPECT_EQ(SelectPage("volumes", Keys(1), -1, "").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vdisk::csi
