// Per-volume QoS limits: what the CSI mutable parameters (CreateVolume mutable_parameters,
// ControllerModifyVolume / a Kubernetes VolumeAttributesClass) may set, parsed and validated.
//
//   iopsLimit, readIopsLimit, writeIopsLimit     operations per second
//   bpsLimit, readBpsLimit, writeBpsLimit        bytes per second ("200Mi", "1G", "524288")
//   <any of the above with Burst instead of Limit>  the rate allowed for up to burstSeconds
//   burstSeconds                                 how long a burst may last (default 1)
//
// "0" (or a key left out) means no limit. A burst must be at least its limit and needs the limit.
// Sizes take K/M/G/T (powers of 1000) or Ki/Mi/Gi/Ti (powers of 1024). Keys with a '/' (a CO's
// namespaced keys, e.g. csi.storage.k8s.io/...) are ignored; anything else is INVALID_ARGUMENT
// naming the key. The same semantics as librbd's rbd_qos_* options, to which the RBD pool maps
// them (LibrbdQosSettings). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::blockdev::qos {

struct RateLimit {
  uint64_t limit = 0;  // per second; 0 = none
  uint64_t burst = 0;  // per second, for up to burst_seconds; 0 = no burst
  bool operator==(const RateLimit&) const = default;
};

struct QosLimits {
  RateLimit iops, read_iops, write_iops;  // operations (read, write, discard, write-zeroes)
  RateLimit bps, read_bps, write_bps;     // bytes
  uint32_t burst_seconds = 1;
  bool unlimited() const;
  bool operator==(const QosLimits&) const = default;
};

StatusOr<QosLimits> ParseQosParams(const Params& params);

// "iops=2000 writeBps=200Mi ..." or "unlimited", for logs and the CLI.
std::string Describe(const QosLimits& limits);

// Every librbd rbd_qos_* image option vdisk manages, with its value for `limits` ("0" = off).
std::map<std::string, std::string> LibrbdQosSettings(const QosLimits& limits);

}  // namespace vdisk::blockdev::qos
