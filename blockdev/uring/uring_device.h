// The io_uring engine: a blockdev::Device over a raw image file or a block device (loop device,
// disk), with one io_uring per IoQueue (one queue per thread).
//
// OpenFileDevice() opens `path` and returns a Device that owns the fd. O_DIRECT is used where the
// file system / device allows it (DirectMode::kAuto), else buffered I/O. Reads, writes, fsync and
// fallocate (discard = PUNCH_HOLE|KEEP_SIZE, write_zeroes = ZERO_RANGE|KEEP_SIZE; on a block
// device the kernel turns these into REQ_OP_WRITE_ZEROES with/without unmap) all go through the
// ring, so poll() never blocks on them. allocated() uses SEEK_DATA / SEEK_HOLE on files and
// reports the whole range on block devices. Thread-safety as blockdev::Device.
//
// Errors: NOT_FOUND (no such path), PERMISSION_DENIED (not allowed to open), INVALID_ARGUMENT
// (not a regular file or block device; DirectMode::kOn where O_DIRECT is impossible).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "blockdev/device.h"

namespace vdisk::blockdev::uring {

enum class DirectMode {
  kAuto,  // O_DIRECT when the file system supports it and the size is aligned; else buffered
  kOn,    // O_DIRECT or fail (INVALID_ARGUMENT)
  kOff,   // buffered (page cache)
};

struct FileDeviceOptions {
  bool read_only = false;
  DirectMode direct = DirectMode::kAuto;
  // Create a regular file of `create_size` bytes (sparse) if `path` does not exist.
  bool create = false;
  uint64_t create_size = 0;
};

// What the engine decided at open time (for logs, tests and benchmarks).
struct FileDeviceInfo {
  bool block_device = false;
  bool direct = false;
  uint32_t block_size = 512;
  uint32_t buffer_alignment = 1;
};

StatusOr<std::unique_ptr<Device>> OpenFileDevice(const std::string& path,
                                                 const FileDeviceOptions& options = {});

// Returns the open-time facts of a Device made by OpenFileDevice, or nullptr for any other Device.
const FileDeviceInfo* GetFileDeviceInfo(const Device& device);

// Parses "path[?direct=auto|on|off]" (the part of a "file:" URI after the scheme).
StatusOr<std::pair<std::string, FileDeviceOptions>> ParseFileUri(const std::string& rest,
                                                                 bool read_only);

}  // namespace vdisk::blockdev::uring
