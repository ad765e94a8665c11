#include "csi/rpc_metrics.h"

namespace vdisk::csi {

namespace {
struct Families {
  metrics::Family<metrics::Counter>& calls;
  metrics::Family<metrics::Histogram>& seconds;
  metrics::Family<metrics::Gauge>& in_flight;
};

Families& Get() {
  auto& r = metrics::Registry::Default();
  static Families f{
      r.Counters("vdisk_csi_calls_total", "CSI calls answered, by method and gRPC code.",
                 {"method", "code"}),
      r.Histograms("vdisk_csi_call_duration_seconds", "CSI call latency, by method and gRPC code.",
                   {"method", "code"}),
      r.Gauges("vdisk_csi_calls_in_flight", "CSI calls running now, by method.", {"method"})};
  return f;
}
}  // namespace

metrics::Gauge& RpcInFlight(const char* method) { return Get().in_flight.With({method}); }

void RecordRpc(const char* method, absl::StatusCode code, double seconds) {
  // gRPC's spelling of the code (what kubelet and the sidecars log): OK, NOT_FOUND, ...
  std::string name = absl::StatusCodeToString(code);
  Families& f = Get();
  f.calls.With({method, name}).Inc();
  f.seconds.With({method, name}).Observe(seconds);
}

}  // namespace vdisk::csi
