// A backup's figures for Prometheus: the text exposition format of one finished (or failed)
// `vdisk backup create`, to write where node_exporter's textfile collector reads it, or to push
// to a Pushgateway (as batch jobs report). Series, all labelled {group} (and {disk} per disk):
//   vdisk_backup_success                     1 if the backup finished, 0 if it failed
//   vdisk_backup_last_success_timestamp_seconds   (on success)
//   vdisk_backup_duration_seconds, vdisk_backup_uploaded_bytes, vdisk_backup_read_throughput_bytes_per_second
//   vdisk_backup_disk_read_bytes{disk}       read from the source
//   vdisk_backup_disk_new_bytes{disk}        raw bytes of chunks new to the repository
//   vdisk_backup_disk_stored_bytes{disk}     those after compression and encryption
//   vdisk_backup_disk_deduplicated_bytes{disk}  read but not uploaded (already stored, or zero)
//   vdisk_backup_disk_chunks{disk,kind}      new, reused, unchanged (change map), zero
// Pure functions except PushMetrics (one HTTP PUT). Thread-safe.
#pragma once

#include <string>

#include "backup/pipeline/backup.h"
#include "common/status.h"

namespace vdisk::backup {

// `result` is null when the backup failed (then only success, duration and the group).
std::string BackupMetricsText(const std::string& group, const BackupResult* result,
                              double seconds, int64_t now_unix_s);

// PUT `text` to a Pushgateway at `gateway_url` (http[s]://host:port) under job `job`, grouped by
// `group` (base64-encoded in the path, so any value is safe). UNAVAILABLE on transport
// failures, FAILED_PRECONDITION on an HTTP error status.
Status PushMetrics(const std::string& gateway_url, const std::string& job, const std::string& group,
                   const std::string& text);

}  // namespace vdisk::backup
