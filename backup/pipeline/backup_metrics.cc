#include "backup/pipeline/backup_metrics.h"

#include "absl/strings/str_cat.h"
#include "backup/s3/http.h"
#include "common/metrics.h"

namespace vdisk::backup {

std::string BackupMetricsText(const std::string& group, const BackupResult* result,
                              double seconds, int64_t now_unix_s) {
  metrics::Registry r;
  auto gauge = [&](const std::string& name, const std::string& help,
                   std::vector<std::string> labels = {"group"}) -> metrics::Family<metrics::Gauge>& {
    return r.Gauges(name, help, std::move(labels));
  };
  gauge("vdisk_backup_success", "1 if the last vdisk backup of the group finished, 0 if it failed.")
      .With({group}).Set(result ? 1 : 0);
  gauge("vdisk_backup_duration_seconds", "Duration of the last vdisk backup of the group.")
      .With({group}).Set(seconds);
  if (!result) return r.Render();
  gauge("vdisk_backup_last_success_timestamp_seconds",
        "Unix time at which the last successful vdisk backup of the group finished.")
      .With({group}).Set(static_cast<double>(now_unix_s));
  gauge("vdisk_backup_uploaded_bytes", "Bytes uploaded to the repository (packs and indexes).")
      .With({group}).Set(static_cast<double>(result->bytes_uploaded));
  uint64_t read = 0;
  const std::vector<std::string> disk = {"group", "disk"};
  for (const auto& d : result->manifest.disks) {
    const DiskStats& s = d.stats;
    read += s.bytes_read;
    gauge("vdisk_backup_disk_read_bytes", "Bytes read from the disk's source.", disk)
        .With({group, d.name}).Set(static_cast<double>(s.bytes_read));
    gauge("vdisk_backup_disk_new_bytes", "Raw bytes of chunks new to the repository.", disk)
        .With({group, d.name}).Set(static_cast<double>(s.bytes_new));
    gauge("vdisk_backup_disk_stored_bytes",
          "Bytes stored for the new chunks, after compression and encryption.", disk)
        .With({group, d.name}).Set(static_cast<double>(s.bytes_stored_new));
    gauge("vdisk_backup_disk_deduplicated_bytes",
          "Bytes read but not uploaded: already in the repository, or all zero.", disk)
        .With({group, d.name}).Set(static_cast<double>(s.bytes_read - std::min(s.bytes_read, s.bytes_new)));
    auto& chunks = gauge("vdisk_backup_disk_chunks", "Chunks of the disk, by how they were handled.",
                         {"group", "disk", "kind"});
    chunks.With({group, d.name, "new"}).Set(static_cast<double>(s.chunks_new));
    chunks.With({group, d.name, "reused"}).Set(static_cast<double>(s.chunks_reused));
    chunks.With({group, d.name, "unchanged"}).Set(static_cast<double>(s.chunks_unchanged));
    chunks.With({group, d.name, "zero"}).Set(static_cast<double>(s.chunks_zero));
  }
  gauge("vdisk_backup_read_throughput_bytes_per_second",
        "Bytes read from the sources per second of the backup's duration.")
      .With({group}).Set(seconds > 0 ? static_cast<double>(read) / seconds : 0);
  return r.Render();
}

namespace {
// Pushgateway's grouping-key encoding: URL-safe base64 (RFC 4648 section 5), '=' kept.
std::string UrlSafeBase64(const std::string& in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {abc[v >> 18], abc[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], '='};
  }
  return out;
}
}  // namespace

Status PushMetrics(const std::string& gateway_url, const std::string& job, const std::string& group,
                   const std::string& text) {
  if (!gateway_url.starts_with("http://") && !gateway_url.starts_with("https://"))
    return absl::InvalidArgumentError(
        absl::StrCat("push gateway '", gateway_url, "' must be an http:// or https:// URL"));
  std::string base = gateway_url;
  while (base.ends_with("/")) base.pop_back();
  // An empty value is encoded as "=" (Pushgateway's rule for empty grouping values).
  const std::string url = absl::StrCat(base, "/metrics/job@base64/", UrlSafeBase64(job),
                                       "/group@base64/", group.empty() ? "=" : UrlSafeBase64(group));
  s3::HttpClient http(s3::HttpOptions{});
  s3::HttpRequest req;
  req.method = "PUT";
  req.url = url;
  req.headers = {{"Content-Type", "text/plain; version=0.0.4"}};
  req.body = text;
  ASSIGN_OR_RETURN(s3::HttpResponse resp, http.Do(req));
  if (resp.status < 200 || resp.status >= 300)
    return absl::FailedPreconditionError(absl::StrCat("push gateway answered HTTP ", resp.status,
                                                      " for ", url, ": ", resp.body.substr(0, 200)));
  return Status();
}

}  // namespace vdisk::backup
