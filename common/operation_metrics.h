// Prometheus series of long storage operations (host copies, RBD flattens), in the default
// registry (common/metrics.h):
//   vdisk_operations_in_flight{kind,pool}                 running now
//   vdisk_operation_progress_ratio{kind,pool,volume}      0..1 while running (series dropped after)
//   vdisk_operations_total{kind,pool,result}              finished: ok, cancelled or failed
//   vdisk_operation_duration_seconds{kind,pool}           how long finished ones took
// One OperationMetrics per running operation; Update() from the progress callback (any thread);
// the destructor counts the result given to Finish() ("failed" if none was). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"

namespace vdisk::metrics {

class OperationMetrics {
 public:
  OperationMetrics(std::string kind, std::string pool, std::string volume);
  ~OperationMetrics();
  OperationMetrics(const OperationMetrics&) = delete;
  OperationMetrics& operator=(const OperationMetrics&) = delete;

  void Update(uint64_t done, uint64_t total);
  void Finish(const Status& s);

 private:
  std::string kind_, pool_, volume_;
  std::shared_ptr<Gauge> progress_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  const char* result_ = "failed";
};

}  // namespace vdisk::metrics
