#include "blockdev/queue_support.h"

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev {

Status CheckIo(const std::string& where, bool is_read, bool is_flush, bool read_only, uint64_t offset,
               uint64_t length, uint32_t block_size, uint64_t size) {
  if (!is_read && !is_flush && read_only) return absl::PermissionDeniedError(where + ": device is read-only");
  if (is_flush) return Status();
  if (offset % block_size != 0 || length % block_size != 0)
    return absl::InvalidArgumentError(absl::StrCat(where, ": not aligned to the block size ", block_size));
  if (offset > size || length > size - offset)
    return absl::OutOfRangeError(absl::StrCat(where, ": beyond the end of the device (", size, " bytes)"));
  return Status();
}

unsigned RunDeferred(DeferredCompletions& deferred) {
  unsigned n = 0;
  while (!deferred.empty()) {
    DeferredCompletions batch;
    batch.swap(deferred);
    for (auto& [done, status] : batch) {
      std::move(done)(std::move(status));
      ++n;
    }
  }
  return n;
}

}  // namespace vdisk::blockdev
