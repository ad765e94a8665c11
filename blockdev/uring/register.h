// Registers the io_uring engine's device URI scheme "file" ("file:/path?direct=auto|on|off";
// plain paths such as "/dev/loop3" or "./disk.img" also reach it, see blockdev/registry.h).
#pragma once

namespace vdisk::blockdev::uring {

void Register();

}  // namespace vdisk::blockdev::uring
