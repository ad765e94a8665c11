// Prometheus series of the CSI services (common/metrics.h, the default registry):
//   vdisk_csi_calls_total{method,code}                     calls answered, by gRPC code
//   vdisk_csi_call_duration_seconds{method,code}           latency of those calls
//   vdisk_csi_calls_in_flight{method}                      calls running now
// Used by ServeRpc (rpc.h), the one place every handler passes through. Thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/metrics.h"

namespace vdisk::csi {

metrics::Gauge& RpcInFlight(const char* method);
void RecordRpc(const char* method, absl::StatusCode code, double seconds);

}  // namespace vdisk::csi
