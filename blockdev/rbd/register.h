// Registers the RBD backend: pool kind "rbd" (rbd_pool.h; options in rbd_options.h, credentials
// from the CSI secrets userID/userKey or the pool config) and device URI scheme "rbd"
// (rbd_device.h: rbd:<pool>/<image>[@snap]?conf=..&id=..&keyring=..).
#pragma once

namespace vdisk::blockdev::rbd {

void Register();

}  // namespace vdisk::blockdev::rbd
