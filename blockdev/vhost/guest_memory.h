// Guest memory as the vhost-user front end shares it (SET_MEM_TABLE): up to kMaxMemRegions
// regions, each an fd mapped MAP_SHARED into this process. Translates guest physical addresses
// (descriptor buffers) and front-end virtual addresses (ring addresses) into host pointers, and
// refuses anything not wholly inside a mapped region (no pointer outside guest memory is ever
// returned). Immutable after Map(); safe to read from many threads. Unmaps on destruction.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "blockdev/vhost/protocol.h"
#include "blockdev/vhost/unique_fd.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost {

class GuestMemory {
 public:
  // Maps `regions[i]` from `fds[i]` (the fds are consumed). INVALID_ARGUMENT for a bad table
  // (count mismatch, empty or overflowing region, overlapping guest ranges), or the mmap errno.
  static StatusOr<std::unique_ptr<GuestMemory>> Map(std::span<const MemRegion> regions,
                                                    std::vector<UniqueFd> fds);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Host pointer for guest-physical [gpa, gpa + len) lying in one region, else nullptr.
  uint8_t* GpaToHost(uint64_t gpa, uint64_t len) const;
  // Host pointer for front-end virtual [va, va + len) lying in one region, else nullptr.
  uint8_t* VaToHost(uint64_t va, uint64_t len) const;
  // Appends iovecs covering guest-physical [gpa, gpa + len) (split where it crosses regions).
  // False, with `out` unchanged, if any byte is unmapped or more than `max_iovs` entries in
  // total would be needed.
  bool GpaToIovecs(uint64_t gpa, uint64_t len, std::vector<iovec>* out, size_t max_iovs) const;

  size_t region_count() const { return regions_.size(); }

 private:
  struct Region {
    uint64_t gpa = 0;
    uint64_t size = 0;
    uint64_t va = 0;
    uint8_t* host = nullptr;     // host address of gpa
    void* map_base = nullptr;    // what to munmap
    size_t map_size = 0;
  };
  GuestMemory() = default;
  const Region* FindGpa(uint64_t gpa) const;

  std::vector<Region> regions_;
};

}  // namespace vdisk::blockdev::vhost
