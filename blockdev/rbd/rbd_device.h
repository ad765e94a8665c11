// The librbd engine: a blockdev::Device over one RBD image (its head, or a snapshot read-only).
//
// I/O goes through librbd aio (rbd_aio_readv / writev / flush / discard / write_zeroes), one
// RbdQueue per thread, completions signalled on an eventfd (see rbd_queue.h). Block size 512.
// allocated() uses rbd_diff_iterate2 including the parent chain: whole-object granularity when
// the image has a valid fast-diff object map (cheap), exact extents otherwise (one object
// listing per object). The Device keeps its Cluster connection alive. Thread-safety as
// blockdev::Device.
//
// Device URIs (scheme "rbd", registered by blockdev/rbd/register.h):
//   rbd:<rados-pool>/<image>[@<snap>][?conf=<ceph.conf>&id=<user>&keyring=<path>
//        &mon_host=<monitors>&cache=true|false&diff=auto|exact|object]
// A snapshot is always opened read-only. Credentials come from the keyring file (a key never
// goes into a URI). `cache` sets librbd's rbd_cache (default: librbd's own, true).
#pragma once

#include <rbd/librbd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "blockdev/device.h"
#include "blockdev/extent.h"
#include "blockdev/rbd/cluster.h"

namespace vdisk::blockdev::rbd {

enum class DiffMode { kAuto, kExact, kWholeObject };

struct ImageSpec {
  std::string pool;      // rados pool
  std::string image;     // image name (used when image_id is empty)
  std::string image_id;  // rbd image id (works for trashed images)
  std::string snap;      // empty: the head
};

// Opens `spec` on an existing connection. NOT_FOUND if the image or snapshot does not exist.
StatusOr<std::unique_ptr<Device>> OpenRbdDevice(std::shared_ptr<Cluster> cluster,
                                                const ImageSpec& spec, bool read_only,
                                                DiffMode diff = DiffMode::kAuto);

// Parsed "rbd:" URI (the part after the scheme).
struct RbdUri {
  ImageSpec spec;
  ClusterOptions cluster;
  DiffMode diff = DiffMode::kAuto;
};
StatusOr<RbdUri> ParseRbdUri(const std::string& rest);

// Connects and opens the device named by an "rbd:" URI.
StatusOr<std::unique_ptr<Device>> OpenRbdUri(const std::string& rest, bool read_only);

// True if the open image's fast-diff object map can be trusted for diffs.
bool HasValidFastDiff(rbd_image_t image);

// Extents of [offset, offset+length) that changed since snapshot `from_snap` (empty: since the
// beginning, i.e. allocated data, the parent chain included) in the open image (head or the
// snapshot it was opened at). With include_zeroed, ranges that became holes/zeroes since
// `from_snap` count as changed (a diff); without, only ranges holding data are returned.
StatusOr<ExtentList> DiffExtents(rbd_image_t image, const std::string& from_snap,
                                 uint64_t offset, uint64_t length, bool whole_object,
                                 bool include_zeroed);

}  // namespace vdisk::blockdev::rbd
