#include "blockdev/device.h"

namespace vdisk::blockdev {

void IoQueue::read(uint64_t offset, std::span<std::byte> buf, IoCallback done) {
  // The iovec must outlive the operation; keep it in the callback's captured state.
  auto iov = std::make_unique<struct iovec>(iovec{buf.data(), buf.size()});
  struct iovec* raw = iov.get();
  readv(offset, raw, 1, [iov = std::move(iov), done = std::move(done)](Status s) mutable {
    std::move(done)(std::move(s));
  });
}

void IoQueue::write(uint64_t offset, std::span<const std::byte> buf, IoCallback done) {
  auto iov = std::make_unique<struct iovec>(
      iovec{const_cast<std::byte*>(buf.data()), buf.size()});
  struct iovec* raw = iov.get();
  writev(offset, raw, 1, [iov = std::move(iov), done = std::move(done)](Status s) mutable {
    std::move(done)(std::move(s));
  });
}

Status IoQueue::drain() {
  RETURN_IF_ERROR(submit());
  while (in_flight() > 0) {
    auto n = poll(1, -1);
    if (!n.ok()) return n.status();
  }
  return Status();
}

}  // namespace vdisk::blockdev
