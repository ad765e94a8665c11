// Helpers for IoQueue engines (device.h): the checks every engine applies before it queues an
// operation, and the queue of completions an engine delivers from poll() without the backend
// (validation errors, a full queue, zero-length requests). Pure functions; not thread-safe (a
// queue belongs to one thread).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "blockdev/device.h"
#include "common/status.h"

namespace vdisk::blockdev {

// The device contract's refusals, in its order: PERMISSION_DENIED for a write (anything but a
// read or flush) on a read-only device, INVALID_ARGUMENT for an offset or length not aligned to
// `block_size`, OUT_OF_RANGE past `size`. `where` names the operation for the message. A flush
// (`is_flush`) is only checked for nothing.
Status CheckIo(const std::string& where, bool is_read, bool is_flush, bool read_only, uint64_t offset,
               uint64_t length, uint32_t block_size, uint64_t size);

// Completions waiting to run in the owner's poll().
using DeferredCompletions = std::vector<std::pair<IoCallback, Status>>;
// Runs them (and any their callbacks add) until none is left; returns how many ran.
unsigned RunDeferred(DeferredCompletions& deferred);

}  // namespace vdisk::blockdev
