// The kill -9 campaign's picture of what must exist: every CSI name the campaign made, the id
// the driver answered, the request that made it (a retry must be the same request) and the
// SHA-256 of the bytes it must hold. Plain data; single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "csi/csi.pb.h"

namespace vdisk::crash {

struct ModelVolume {
  std::string id;
  ::csi::v1::CreateVolumeRequest request;
  std::string digest;  // of the first `size` bytes
  uint64_t size = 0;
};

struct ModelSnapshot {
  std::string id;
  ::csi::v1::CreateSnapshotRequest request;
  std::string digest;
  uint64_t size = 0;
};

struct Model {
  std::map<std::string, ModelVolume> volumes;      // by CSI name
  std::map<std::string, ModelSnapshot> snapshots;  // by CSI name
};

// Recovery figures of one kind of call.
struct Recovery {
  std::vector<double> seconds;  // restart (Probe answers) -> the retried call succeeds
  int killed_in_flight = 0;     // the kill landed while the call ran
  int finished_first = 0;       // the call had answered before the kill (the retry is a repeat)
  int aborted_answers = 0;      // ABORTED answers seen while retrying (a dead creator's record)
};

// p-th percentile (0..100) of `v` (sorted copy); 0 for an empty vector.
double Percentile(std::vector<double> v, double p);

}  // namespace vdisk::crash
