// The five IoQueue entry points of an engine that gives every request a preallocated slot and
// parks it until submit() (the rbd, iscsi and nfs queues). Header-only; not thread-safe (a queue
// belongs to one thread).
//
// `Engine` derives from ParkingIoQueue<Engine>, befriends it, and has:
//   enum class Op { kRead, kWrite, kFlush, kDiscard, kZeroes };
//   Slot* Start(Op, uint64_t offset, uint64_t length, IoCallback& done);  // nullptr: the
//       request is already completed (refused, full queue, zero length) and delivered by poll()
//   Slot with `index`, `iov`, `iovcnt`;  std::vector<uint32_t> parked_;
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "blockdev/device.h"

namespace vdisk::blockdev {

template <class Engine>
class ParkingIoQueue : public IoQueue {
 public:
  void readv(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) final {
    Vectored(Engine::Op::kRead, offset, iov, iovcnt, done);
  }
  void writev(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) final {
    Vectored(Engine::Op::kWrite, offset, iov, iovcnt, done);
  }
  void flush(IoCallback done) final { Plain(Engine::Op::kFlush, 0, 0, done); }
  void discard(uint64_t offset, uint64_t length, IoCallback done) final {
    Plain(Engine::Op::kDiscard, offset, length, done);
  }
  void write_zeroes(uint64_t offset, uint64_t length, IoCallback done) final {
    Plain(Engine::Op::kZeroes, offset, length, done);
  }

 private:
  template <class Op>
  void Vectored(Op op, uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback& done) {
    uint64_t length = 0;
    for (int i = 0; i < iovcnt; ++i) length += iov[i].iov_len;
    auto& engine = static_cast<Engine&>(*this);
    auto* slot = engine.Start(op, offset, length, done);
    if (!slot) return;
    slot->iov = iov;
    slot->iovcnt = iovcnt;
    engine.parked_.push_back(slot->index);
  }
  template <class Op>
  void Plain(Op op, uint64_t offset, uint64_t length, IoCallback& done) {
    auto& engine = static_cast<Engine&>(*this);
    if (auto* slot = engine.Start(op, offset, length, done)) engine.parked_.push_back(slot->index);
  }
};

}  // namespace vdisk::blockdev
