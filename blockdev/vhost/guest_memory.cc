#include "blockdev/vhost/guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::vhost {

StatusOr<std::unique_ptr<GuestMemory>> GuestMemory::Map(std::span<const MemRegion> regions,
                                                        std::vector<UniqueFd> fds) {
  if (regions.empty() || regions.size() > kMaxMemRegions) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory table with ", regions.size(), " regions"));
  }
  if (fds.size() != regions.size()) {
    return absl::InvalidArgumentError(absl::StrCat("memory table with ", regions.size(),
                                                   " regions but ", fds.size(), " fds"));
  }
  std::unique_ptr<GuestMemory> mem(new GuestMemory());
  for (size_t i = 0; i < regions.size(); i++) {
    const MemRegion& r = regions[i];
    uint64_t end;
    if (r.memory_size == 0 || __builtin_add_overflow(r.guest_phys_addr, r.memory_size, &end) ||
        __builtin_add_overflow(r.userspace_addr, r.memory_size, &end) ||
        __builtin_add_overflow(r.mmap_offset, r.memory_size, &end) ||
        r.mmap_offset + r.memory_size > (uint64_t{1} << 48)) {
      return absl::InvalidArgumentError(absl::StrCat("memory region ", i, " is malformed"));
    }
    for (const Region& other : mem->regions_) {
      if (r.guest_phys_addr < other.gpa + other.size && other.gpa < r.guest_phys_addr + r.memory_size) {
        return absl::InvalidArgumentError(absl::StrCat("memory region ", i, " overlaps another"));
      }
    }
    size_t map_size = static_cast<size_t>(r.mmap_offset + r.memory_size);
    // Touching a mapping past the end of its file raises SIGBUS: refuse such a region.
    struct stat st;
    if (::fstat(fds[i].get(), &st) != 0) return LastErrnoStatus("fstat of guest memory fd");
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < map_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "memory region ", i, " extends past the end of its file (", map_size, " > ",
          st.st_size, " bytes)"));
    }
    void* base = ::mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                        fds[i].get(), 0);
    if (base == MAP_FAILED) {
      return ErrnoStatus(errno, absl::StrCat("mmap of guest memory region ", i));
    }
    // The mapping holds its own reference to the file; the fd is closed when `fds` goes.
    Region region;
    region.gpa = r.guest_phys_addr;
    region.size = r.memory_size;
    region.va = r.userspace_addr;
    region.host = static_cast<uint8_t*>(base) + r.mmap_offset;
    region.map_base = base;
    region.map_size = map_size;
    mem->regions_.push_back(region);
  }
  return mem;
}

GuestMemory::~GuestMemory() {
  for (const Region& r : regions_) ::munmap(r.map_base, r.map_size);
}

const GuestMemory::Region* GuestMemory::FindGpa(uint64_t gpa) const {
  for (const Region& r : regions_) {
    if (gpa >= r.gpa && gpa - r.gpa < r.size) return &r;
  }
  return nullptr;
}

uint8_t* GuestMemory::GpaToHost(uint64_t gpa, uint64_t len) const {
  const Region* r = FindGpa(gpa);
  if (r == nullptr) return nullptr;
  uint64_t off = gpa - r->gpa;
  if (len > r->size - off) return nullptr;
  return r->host + off;
}

uint8_t* GuestMemory::VaToHost(uint64_t va, uint64_t len) const {
  for (const Region& r : regions_) {
    if (va >= r.va && va - r.va < r.size) {
      uint64_t off = va - r.va;
      if (len > r.size - off) return nullptr;
      return r.host + off;
    }
  }
  return nullptr;
}

bool GuestMemory::GpaToIovecs(uint64_t gpa, uint64_t len, std::vector<iovec>* out,
                              size_t max_iovs) const {
  size_t start = out->size();
  uint64_t end;
  if (__builtin_add_overflow(gpa, len, &end)) return false;
  while (len > 0) {
    const Region* r = FindGpa(gpa);
    if (r == nullptr || out->size() >= max_iovs) {
      out->resize(start);
      return false;
    }
    uint64_t off = gpa - r->gpa;
    uint64_t n = std::min(len, r->size - off);
    // Merge with the previous entry when contiguous in host memory (regions back to back).
    if (out->size() > start && static_cast<uint8_t*>(out->back().iov_base) + out->back().iov_len ==
                                   r->host + off) {
      out->back().iov_len += n;
    } else {
      out->push_back(iovec{r->host + off, static_cast<size_t>(n)});
    }
    gpa += n;
    len -= n;
  }
  return true;
}

}  // namespace vdisk::blockdev::vhost
