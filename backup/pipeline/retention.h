// Retention policy: which backups to keep, per group (restic/borg semantics). keep-last N keeps
// the N newest; keep-hourly/daily/weekly/monthly N keep the newest backup of each of the N most
// recent hours/days/ISO weeks/months (UTC) that have backups. A backup is kept if any rule keeps
// it. Pure function, thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace vdisk::backup {

struct RetentionPolicy {
  int keep_last = 0;
  int keep_hourly = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  bool empty() const {
    return keep_last <= 0 && keep_hourly <= 0 && keep_daily <= 0 && keep_weekly <= 0 &&
           keep_monthly <= 0;
  }
};

struct BackupRef {
  std::string id;
  std::string group;
  int64_t time = 0;  // unix seconds
};

std::set<std::string> SelectKept(const std::vector<BackupRef>& backups,
                                 const RetentionPolicy& policy);

}  // namespace vdisk::backup
