// Reading the kernel RBD client's mappings (`rbd device list --format json`) to find the one an
// attach can reuse. A read-only attach must get a read-only mapping and a read-write attach a
// read-write one: krbd maps an image several times, and handing the staged read-write device to
// a read-only publish would both let it write and let its unpublish unmap the stage's device.
// Pure functions; thread-safe.
#pragma once

#include <functional>
#include <string>

namespace vdisk::blockdev::rbd {

// True if the kernel marks block device `dev` (e.g. /dev/rbd3) read-only (/sys/block/rbd3/ro).
bool KernelDeviceReadOnly(const std::string& dev);

// The device of a mapping of `pool`/`image` at its head (not a snapshot) whose read-only state
// (`is_read_only(device)`) equals `read_only`; "" if there is none or `list_json` is unreadable.
std::string FindReusableMapping(const std::string& list_json, const std::string& pool, const std::string& image,
                                bool read_only, const std::function<bool(const std::string&)>& is_read_only);

}  // namespace vdisk::blockdev::rbd
