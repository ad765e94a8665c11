// Fast all-zero detection for the copy engine (and anyone skipping zero blocks).
// Pure functions; thread-safe. Picks an AVX2 path at run time where the CPU has it.
#pragma once

#include <cstddef>

namespace vdisk::blockdev {

// True if all `len` bytes at `data` are zero. Any alignment and length.
bool IsAllZero(const void* data, size_t len);

// The portable path (64 bytes per step, 8-byte words); exposed for benchmarks and tests.
bool IsAllZeroScalar(const void* data, size_t len);

}  // namespace vdisk::blockdev
