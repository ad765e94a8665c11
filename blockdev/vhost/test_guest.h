// Test helper: a memfd standing in for guest RAM, mapped in the test (to lay out rings and
// buffers) and describable as a vhost-user memory table. Used by the unit tests here and the
// protocol tests in tests/vhost/.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "blockdev/vhost/protocol.h"

namespace vdisk::blockdev::vhost::testing {

class FakeGuestRam {
 public:
  // `size` bytes at guest-physical `gpa`, advertised at front-end virtual address `va`.
  FakeGuestRam(uint64_t size, uint64_t gpa = 0, uint64_t va = 0x7f0000000000ull)
      : size_(size), gpa_(gpa), va_(va) {
    fd_ = ::memfd_create("fake-guest-ram", MFD_CLOEXEC);
    if (fd_ < 0 || ::ftruncate(fd_, static_cast<off_t>(size)) != 0) throw std::runtime_error("memfd");
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap");
    base_ = static_cast<uint8_t*>(p);
  }
  ~FakeGuestRam() {
    ::munmap(base_, size_);
    ::close(fd_);
  }
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  uint64_t gpa() const { return gpa_; }
  uint64_t va() const { return va_; }
  MemRegion region() const { return MemRegion{gpa_, size_, va_, 0}; }
  // Test-side pointer for guest-physical `gpa`.
  uint8_t* at(uint64_t gpa) { return base_ + (gpa - gpa_); }
  uint64_t va_of(uint64_t gpa) const { return va_ + (gpa - gpa_); }

 private:
  uint64_t size_, gpa_, va_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
};

// A split ring laid out in FakeGuestRam at `base` (guest-physical), as a driver would.
class DriverRing {
 public:
  DriverRing(FakeGuestRam* ram, uint64_t base, uint16_t num) : ram_(ram), num_(num) {
    desc_ = base;
    avail_ = desc_ + 16ull * num;
    used_ = (avail_ + 6 + 2ull * num + 3) & ~3ull;
    std::memset(ram->at(desc_), 0, used_ + 6 + 8ull * num - desc_);
  }
  uint16_t num() const { return num_; }
  uint64_t desc_gpa() const { return desc_; }
  uint64_t avail_gpa() const { return avail_; }
  uint64_t used_gpa() const { return used_; }

  void SetDesc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    VringDesc d{addr, len, flags, next};
    std::memcpy(ram_->at(desc_ + 16ull * i), &d, sizeof(d));
  }
  // Makes `head` available and bumps avail->idx.
  void Post(uint16_t head) {
    uint16_t idx = avail_idx();
    std::memcpy(ram_->at(avail_ + 4 + 2ull * (idx % num_)), &head, 2);
    SetAvailIdx(static_cast<uint16_t>(idx + 1));
  }
  uint16_t avail_idx() { return Get16(avail_ + 2); }
  void SetAvailIdx(uint16_t v) { __atomic_store_n(reinterpret_cast<uint16_t*>(ram_->at(avail_ + 2)), v, __ATOMIC_RELEASE); }
  void SetAvailFlags(uint16_t v) { std::memcpy(ram_->at(avail_), &v, 2); }
  void SetUsedEvent(uint16_t v) { std::memcpy(ram_->at(avail_ + 4 + 2ull * num_), &v, 2); }
  uint16_t used_idx() { return __atomic_load_n(reinterpret_cast<uint16_t*>(ram_->at(used_ + 2)), __ATOMIC_ACQUIRE); }
  uint16_t avail_event() { return Get16(used_ + 4 + 8ull * num_); }
  VringUsedElem used(uint16_t i) {
    VringUsedElem e;
    std::memcpy(&e, ram_->at(used_ + 4 + 8ull * (i % num_)), sizeof(e));
    return e;
  }

 private:
  uint16_t Get16(uint64_t gpa) {
    uint16_t v;
    std::memcpy(&v, ram_->at(gpa), 2);
    return v;
  }
  FakeGuestRam* ram_;
  uint16_t num_;
  uint64_t desc_, avail_, used_;
};

}  // namespace vdisk::blockdev::vhost::testing
