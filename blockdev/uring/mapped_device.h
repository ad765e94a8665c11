// A read-only Device that presents a virtual disk whose data lives at other offsets of a host
// file: e.g. an uncompressed, unencrypted qcow2 image without a backing file, as laid out by
// `qemu-img map --output=json`. Reads of mapped ranges go to the host file through the io_uring
// engine; everything else reads as zeroes and is not reported by allocated().
//
// Used by `vdisk import` so a qcow2 image is copied sparse, at queue depth, without a temporary
// raw file. Thread-safety as blockdev::Device. The host file must not change while in use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/device.h"

namespace vdisk::blockdev::uring {

struct MappedRange {
  uint64_t guest_offset = 0;
  uint64_t length = 0;
  uint64_t host_offset = 0;
};

// `ranges` must be sorted and non-overlapping inside [0, virtual_size). INVALID_ARGUMENT
// otherwise (or if virtual_size is not a multiple of 512).
StatusOr<std::unique_ptr<Device>> OpenMappedDevice(const std::string& host_path,
                                                   uint64_t virtual_size,
                                                   std::vector<MappedRange> ranges);

// Runs `qemu-img info` / `qemu-img map` on a qcow2 image and opens it as a MappedDevice.
// UNIMPLEMENTED (with the reason) when the image cannot be mapped directly: compressed or
// encrypted clusters, a backing file, or a format other than qcow2; the caller then converts.
StatusOr<std::unique_ptr<Device>> OpenQcow2Mapped(const std::string& path);

}  // namespace vdisk::blockdev::uring
