#include "backup/pipeline/retention.h"

#include <gtest/gtest.h>

namespace vdisk::backup {
namespace {

constexpr int64_t kDay = 86400;
// 2024-01-01 00:00 UTC is a Monday.
constexpr int64_t kMonday = 1704067200;

std::vector<BackupRef> TwoPerDay(int days, const std::string& group = "g") {
  std::vector<BackupRef> out;
  for (int d = 0; d < days; ++d)
    for (int h : {1, 13})
      out.push_back({group + "-d" + std::to_string(d) + "h" + std::to_string(h), group,
                     kMonday + d * kDay + h * 3600});
  return out;
}

TEST(Retention, KeepLast) {
  auto keep = SelectKept(TwoPerDay(3), {.keep_last = 2});
  EXPECT_EQ(keep, (std::set<std::string>{"g-d2h13", "g-d2h1"}));
}

TEST(Retention, KeepDailyTakesNewestOfEachRecentDay) {
  auto keep = SelectKept(TwoPerDay(5), {.keep_daily = 3});
  EXPECT_EQ(keep, (std::set<std::string>{"g-d4h13", "g-d3h13", "g-d2h13"}));
}

TEST(Retention, KeepWeeklyUsesIsoWeeks) {
  // 15 days from Monday 2024-01-01: weeks 1, 2 and the Monday of week 3.
  auto keep = SelectKept(TwoPerDay(15), {.keep_weekly = 2});
  EXPECT_EQ(keep, (std::set<std::string>{"g-d14h13", "g-d13h13"}));
}

TEST(Retention, RulesCombineAndGroupsAreIndependent) {
  auto all = TwoPerDay(4, "a");
  auto b = TwoPerDay(2, "b");
  all.insert(all.end(), b.begin(), b.end());
  auto keep = SelectKept(all, {.keep_last = 1, .keep_daily = 2});
  EXPECT_EQ(keep, (std::set<std::string>{"a-d3h13", "a-d2h13", "b-d1h13", "b-d0h13"}));
}

TEST(Retention, EmptyPolicyKeepsNothing) {
  RetentionPolicy p;
  EXPECT_TRUE(p.empty());
  EXPECT_TRUE(SelectKept(TwoPerDay(2), p).empty());
}

}  // namespace
}  // namespace vdisk::backup
