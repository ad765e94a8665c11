// The libnfs engine: a blockdev::Device over one raw image file on an NFS export (NFSv3).
//
// No kernel NFS client is involved: the Device keeps a control Session (nfs_session.h) for
// attributes, and every IoQueue is its own libnfs connection speaking NFSv3 READ / WRITE /
// COMMIT to the image's file handle (nfs_queue.h: pipelined, split at the server's rsize /
// wsize, unstable writes kept until a COMMIT proves them durable). Block size 512. The size is
// the file's size at open time (reopen after a resize, as with the other engines).
//
// allocated(): NFSv3 has no SEEK_DATA / SEEK_HOLE (NFSv4.2 has SEEK, libnfs 4.0 cannot speak
// it), so the answer comes from the file's `used` attribute when that settles it (0 bytes used:
// nothing allocated; at least the size: everything may be), and otherwise from READING the
// range and reporting the 64 KiB blocks that are not all zeroes: the cost is a full read of the
// range over the network (the server reads its holes as zeroes without touching disk).
// allocation_requires_read() says so, and the copy engine then skips the pre-scan and detects
// zeroes in its single pass instead.
// Thread-safety as blockdev::Device.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "blockdev/device.h"
#include "blockdev/nfs/nfs_session.h"
#include "blockdev/nfs/nfs_target.h"

namespace vdisk::blockdev::nfs {

struct NfsDeviceOptions {
  bool read_only = false;
  // Unstable write data each queue keeps until COMMIT (nfs_queue.h); 0: every write FILE_SYNC.
  uint64_t unstable_limit = 64ull << 20;
  // Zero-detection granularity of allocated() when it has to read (a power of two >= 512).
  uint32_t scan_granularity = 64 * 1024;
  // The same file as this host sees it on the server's own file system (a pool's local_path):
  // allocated() then asks that file system (SEEK_DATA / SEEK_HOLE) instead of reading.
  std::string local_path;
};

// Opens `path` (absolute within the export) on `session`'s export. NOT_FOUND if it does not
// exist, INVALID_ARGUMENT if it is not a regular file, and the Session's errors.
StatusOr<std::unique_ptr<Device>> OpenNfsDevice(std::shared_ptr<Session> session,
                                                const std::string& path,
                                                const NfsDeviceOptions& options = {});

// Connects (a new Session) and opens the image an "nfs:" URI names (nfs_target.h).
StatusOr<std::unique_ptr<Device>> OpenNfsUri(const std::string& rest, bool read_only);

// For tests: the file attributes the Device read at open (nullptr for other Devices).
const FileAttr* GetNfsDeviceAttr(const Device& device);

}  // namespace vdisk::blockdev::nfs
