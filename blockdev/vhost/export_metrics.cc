#include "blockdev/vhost/export_metrics.h"

#include "blockdev/vhost/protocol.h"

namespace vdisk::blockdev::vhost {

namespace {
const char* const kOpNames[] = {"read", "write", "flush", "discard", "write_zeroes", "get_id",
                                "other"};

int OpIndex(uint32_t type) {
  switch (type) {
    case kBlkTIn: return 0;
    case kBlkTOut: return 1;
    case kBlkTFlush: return 2;
    case kBlkTDiscard: return 3;
    case kBlkTWriteZeroes: return 4;
    case kBlkTGetId: return 5;
    default: return 6;
  }
}

struct Families {
  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Counter>& bytes;
  metrics::Family<metrics::Counter>& errors;
  metrics::Family<metrics::Histogram>& seconds;
};

Families& Get() {
  auto& r = metrics::Registry::Default();
  const std::vector<std::string> labels = {"volume", "socket", "op"};
  static Families f{
      r.Counters("vdisk_vhost_requests_total", "vhost-user-blk requests completed.", labels),
      r.Counters("vdisk_vhost_bytes_total", "Bytes read or written by vhost-user-blk requests.",
                 labels),
      r.Counters("vdisk_vhost_errors_total",
                 "vhost-user-blk requests answered with an error (IOERR or UNSUPP).", labels),
      r.Histograms("vdisk_vhost_request_duration_seconds",
                   "vhost-user-blk request latency, from reading the request to answering it.",
                   labels)};
  return f;
}
}  // namespace

ExportMetrics::ExportMetrics(std::string volume, std::string socket)
    : volume_(std::move(volume)), socket_(std::move(socket)) {
  Families& f = Get();
  for (int i = 0; i < kOps; ++i) {
    metrics::LabelValues l = {volume_, socket_, kOpNames[i]};
    ops_[i] = {f.requests.Share(l), f.bytes.Share(l), f.errors.Share(l), f.seconds.Share(l)};
  }
}

ExportMetrics::~ExportMetrics() {
  Families& f = Get();
  for (int i = 0; i < kOps; ++i) {
    metrics::LabelValues l = {volume_, socket_, kOpNames[i]};
    f.requests.Remove(l);
    f.bytes.Remove(l);
    f.errors.Remove(l);
    f.seconds.Remove(l);
  }
}

void ExportMetrics::Record(uint32_t type, uint64_t data_bytes, bool failed, double seconds) {
  Op& op = ops_[OpIndex(type)];
  op.requests->Inc();
  if (data_bytes) op.bytes->Inc(data_bytes);
  if (failed) op.errors->Inc();
  op.seconds->Observe(seconds);
}

}  // namespace vdisk::blockdev::vhost
