// Blocking one-shot I/O on a Device, for control paths, tests and tools (not the data path:
// each call opens a depth-1 queue). Thread-safe as Device::open_queue() is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "blockdev/device.h"

namespace vdisk::blockdev {

Status ReadAt(Device& dev, uint64_t offset, std::span<std::byte> buf);
Status WriteAt(Device& dev, uint64_t offset, std::span<const std::byte> buf);
Status Flush(Device& dev);
Status Discard(Device& dev, uint64_t offset, uint64_t length);
Status WriteZeroes(Device& dev, uint64_t offset, uint64_t length);

}  // namespace vdisk::blockdev
