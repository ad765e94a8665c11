#include "backup/pipeline/retention.h"

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>

namespace vdisk::backup {

namespace {

std::tm Utc(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

int64_t HourKey(int64_t t) { return t / 3600; }
int64_t DayKey(int64_t t) { return t / 86400; }
int64_t WeekKey(int64_t t) {
  std::tm tm = Utc(t);
  char buf[16];
  std::strftime(buf, sizeof buf, "%G%V", &tm);  // ISO year + week
  return std::atoll(buf);
}
int64_t MonthKey(int64_t t) {
  std::tm tm = Utc(t);
  return (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

// `newest_first` is sorted newest first: keep the first backup of each of the first n buckets.
void KeepBuckets(const std::vector<const BackupRef*>& newest_first, int n,
                 const std::function<int64_t(int64_t)>& bucket, std::set<std::string>* keep) {
  if (n <= 0) return;
  int64_t last = 0;
  bool have = false;
  int taken = 0;
  for (const BackupRef* b : newest_first) {
    int64_t k = bucket(b->time);
    if (have && k == last) continue;
    have = true;
    last = k;
    keep->insert(b->id);
    if (++taken >= n) break;
  }
}

}  // namespace

std::set<std::string> SelectKept(const std::vector<BackupRef>& backups,
                                 const RetentionPolicy& policy) {
  std::map<std::string, std::vector<const BackupRef*>> groups;
  for (const auto& b : backups) groups[b.group].push_back(&b);
  std::set<std::string> keep;
  for (auto& [group, list] : groups) {
    std::sort(list.begin(), list.end(), [](const BackupRef* a, const BackupRef* b) {
      return a->time != b->time ? a->time > b->time : a->id > b->id;
    });
    for (int i = 0; i < policy.keep_last && i < static_cast<int>(list.size()); ++i)
      keep.insert(list[i]->id);
    KeepBuckets(list, policy.keep_hourly, HourKey, &keep);
    KeepBuckets(list, policy.keep_daily, DayKey, &keep);
    KeepBuckets(list, policy.keep_weekly, WeekKey, &keep);
    KeepBuckets(list, policy.keep_monthly, MonthKey, &keep);
  }
  return keep;
}

}  // namespace vdisk::backup
