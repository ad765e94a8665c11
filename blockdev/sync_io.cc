#include "blockdev/sync_io.h"

#include <utility>

namespace vdisk::blockdev {

namespace {
// Opens a depth-1 queue, lets `issue` queue one operation, waits for it.
template <typename Issue>
Status RunOne(Device& dev, Issue&& issue) {
  ASSIGN_OR_RETURN(auto q, dev.open_queue(1));
  Status result;
  issue(*q, [&result](Status s) { result = std::move(s); });
  RETURN_IF_ERROR(q->drain());
  return result;
}
}  // namespace

Status ReadAt(Device& dev, uint64_t offset, std::span<std::byte> buf) {
  return RunOne(dev, [&](IoQueue& q, IoCallback cb) { q.read(offset, buf, std::move(cb)); });
}

Status WriteAt(Device& dev, uint64_t offset, std::span<const std::byte> buf) {
  return RunOne(dev, [&](IoQueue& q, IoCallback cb) { q.write(offset, buf, std::move(cb)); });
}

Status Flush(Device& dev) {
  return RunOne(dev, [&](IoQueue& q, IoCallback cb) { q.flush(std::move(cb)); });
}

Status Discard(Device& dev, uint64_t offset, uint64_t length) {
  return RunOne(dev, [&](IoQueue& q, IoCallback cb) { q.discard(offset, length, std::move(cb)); });
}

Status WriteZeroes(Device& dev, uint64_t offset, uint64_t length) {
  return RunOne(dev,
                [&](IoQueue& q, IoCallback cb) { q.write_zeroes(offset, length, std::move(cb)); });
}

}  // namespace vdisk::blockdev
