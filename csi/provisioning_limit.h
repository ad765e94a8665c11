// Enforcement of each pool's over-provisioning limit (blockdev/overprovisioning.h) by the
// controller: CreateVolume and ControllerExpandVolume reserve the bytes they are about to
// promise, and are refused with RESOURCE_EXHAUSTED past the limit; GetCapacity reports what the
// pool can still promise.
//
// What a pool has promised is the sum of the sizes of its volumes (pending ones included;
// snapshots do not count), plus the reservations of creates and expansions in flight in this
// process, so that two concurrent requests cannot both take the last bytes. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::csi {

class ProvisioningLimits {
 public:
  // Bytes held for one request in flight; returned when it is destroyed (the volume then counts
  // by its own size). Move-only.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& o) noexcept;
    Reservation& operator=(Reservation&& o) noexcept;
    ~Reservation();

   private:
    friend class ProvisioningLimits;
    Reservation(ProvisioningLimits* owner, std::string pool, uint64_t bytes)
        : owner_(owner), pool_(std::move(pool)), bytes_(bytes) {}
    void Release();
    ProvisioningLimits* owner_ = nullptr;
    std::string pool_;
    uint64_t bytes_ = 0;
  };

  // Reserves `extra_bytes` more in `pool` (configured as `pool_name` with `percent`, 0 = no
  // limit) whose real capacity is `total_bytes`. RESOURCE_EXHAUSTED, saying what is promised and
  // what the limit is, when that would exceed the limit.
  StatusOr<Reservation> Reserve(const std::string& pool_name, blockdev::Pool& pool, uint32_t percent,
                                uint64_t total_bytes, uint64_t extra_bytes);

  // What `pool` can still promise (0 at or past the limit; UINT64_MAX without a limit).
  StatusOr<uint64_t> Promisable(const std::string& pool_name, blockdev::Pool& pool, uint32_t percent,
                                uint64_t total_bytes);

 private:
  // Sum of the volume sizes plus reservations. Called with mu_ held.
  StatusOr<uint64_t> PromisedLocked(const std::string& pool_name, blockdev::Pool& pool);

  std::mutex mu_;
  std::map<std::string, uint64_t> reserved_;  // by pool name
};

}  // namespace vdisk::csi
