// The over-provisioning limit of a pool: the sum of the sizes of its volumes may not exceed this
// percentage of the pool's real capacity (Capacity::total_bytes), as Longhorn's "Storage Over
// Provisioning Percentage" bounds what it schedules on a disk. Thin volumes are promised more
// than is free; the limit keeps that promise bounded, so a VM meets RESOURCE_EXHAUSTED at
// provisioning time instead of ENOSPC as I/O errors later.
//
// Configured per pool with the generic pool option `overprovisioning=<percent>` ("300", "300%")
// or `overprovisioning=off` (no limit); every pool kind accepts it (PoolSet strips it before the
// backend sees its options). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace vdisk::blockdev {

inline constexpr char kOverprovisioningOption[] = "overprovisioning";
// Twice the real capacity: VM disks are thin and rarely full.
inline constexpr uint32_t kDefaultOverprovisioningPercent = 200;
inline constexpr uint32_t kMaxOverprovisioningPercent = 100000;

// "<n>" or "<n>%" with n in [1, kMaxOverprovisioningPercent], or "off" (returns 0: no limit).
// INVALID_ARGUMENT otherwise.
StatusOr<uint32_t> ParseOverprovisioning(const std::string& value);

// The most bytes the pool may promise: percent% of `total_bytes` (UINT64_MAX for 0 = no limit).
uint64_t PromiseLimit(uint32_t percent, uint64_t total_bytes);

}  // namespace vdisk::blockdev
