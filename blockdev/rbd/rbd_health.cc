// RbdPool::health(): do the monitors and the OSD holding the journal answer?
#include <rados/librados.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/rbd_pool_impl.h"

namespace vdisk::blockdev::rbd {

Status RbdPool::health() {
  // The monitors: "ceph df" is what capacity() asks (bounded by rados_mon_op_timeout).
  auto cap = capacity({});
  if (!cap.ok())
    return absl::UnavailableError(absl::StrCat(cluster_->describe(), ": monitors: ",
                                               std::string(cap.status().message())));
  // An OSD: the journal object's primary. This waits while the OSD is down (no timeout of its
  // own); the monitor calling health() reports a check that does not return in time.
  ASSIGN_OR_RETURN(const IoCtx* io, Io(options_.defaults.rbd_pool));
  uint64_t size = 0;
  time_t mtime = 0;
  int r = rados_stat(io->get(), journal_->object().c_str(), &size, &mtime);
  if (r < 0 && r != -ENOENT)
    return absl::UnavailableError(absl::StrCat(cluster_->describe(), ": reading the journal ",
                                               journal_->object(), ": ", std::strerror(-r)));
  return Status();
}

}  // namespace vdisk::blockdev::rbd
