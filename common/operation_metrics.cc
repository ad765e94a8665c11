#include "common/operation_metrics.h"

namespace vdisk::metrics {

namespace {
struct Families {
  Family<Gauge>& in_flight;
  Family<Gauge>& progress;
  Family<Counter>& total;
  Family<Histogram>& seconds;
};

Families& Get() {
  auto& r = Registry::Default();
  static Families f{
      r.Gauges("vdisk_operations_in_flight", "Long operations running now (host copies, flattens).",
               {"kind", "pool"}),
      r.Gauges("vdisk_operation_progress_ratio",
               "Progress of a running long operation, 0 to 1 (dropped when it ends).",
               {"kind", "pool", "volume"}),
      r.Counters("vdisk_operations_total", "Long operations finished, by result.",
                 {"kind", "pool", "result"}),
      r.Histograms("vdisk_operation_duration_seconds", "Duration of finished long operations.",
                   {"kind", "pool"}, {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400})};
  return f;
}
}  // namespace

OperationMetrics::OperationMetrics(std::string kind, std::string pool, std::string volume)
    : kind_(std::move(kind)), pool_(std::move(pool)), volume_(std::move(volume)) {
  Families& f = Get();
  f.in_flight.With({kind_, pool_}).Add(1);
  progress_ = f.progress.Share({kind_, pool_, volume_});
  progress_->Set(0);
}

void OperationMetrics::Update(uint64_t done, uint64_t total) {
  progress_->Set(total ? static_cast<double>(done) / static_cast<double>(total) : 0);
}

void OperationMetrics::Finish(const Status& s) {
  result_ = s.ok() ? "ok" : absl::IsCancelled(s) ? "cancelled" : "failed";
}

OperationMetrics::~OperationMetrics() {
  Families& f = Get();
  f.in_flight.With({kind_, pool_}).Add(-1);
  f.progress.Remove({kind_, pool_, volume_});
  f.total.With({kind_, pool_, result_}).Inc();
  f.seconds.With({kind_, pool_})
      .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
}

}  // namespace vdisk::metrics
