// The NFSv3 file handle behind a libnfs `struct nfsfh`, as bytes, for the raw RPC data path.
//
// libnfs 4.0 hands out `struct nfs_fh *` (nfs_get_fh) but does not publish its layout; it has
// been { int len; char *val; } since libnfs 2.0 (lib/libnfs-private.h). HandleBytes() reads it
// that way and checks the result is a plausible NFSv3 handle (1..64 bytes, NFS3_FHSIZE), so a
// future layout change fails loudly (INTERNAL) instead of sending garbage. Pure; thread-safe.
#pragma once

#include <string>

#include "common/status.h"

struct nfsfh;

namespace vdisk::blockdev::nfs {

StatusOr<std::string> HandleBytes(struct nfsfh* fh);

}  // namespace vdisk::blockdev::nfs
