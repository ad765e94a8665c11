// The vhost-user exports one process serves, keyed by socket path: what a CSI node plugin keeps
// for volumes published with `attach: vhost-user` (one export per publish, csi/vhost_publish.h).
//
// Publish() is idempotent for the same (socket path, volume, read-only): a retried
// NodePublishVolume finds its export running and returns OK. Unpublish() stops the export
// (in-flight requests complete, the socket file is removed) and is idempotent. Resize() hands
// every export of a volume the reopened, grown volume (NodeExpandVolume). Thread-safe (calls
// are serialised; opening a volume happens under the registry's lock).
//
// Errors: ALREADY_EXISTS when the socket path already serves a different volume or mode;
// otherwise the errors of the `open` callback and of Export::Start / Export::Resize.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "blockdev/device.h"
#include "blockdev/vhost/export.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost {

// Opens (or re-opens) the volume to export in the given mode, e.g.
// [&](bool ro) { return pool->open_volume(id, ro); }.
using VolumeOpener = std::function<StatusOr<std::unique_ptr<Device>>(bool read_only)>;

struct PublishedExport {
  std::string volume_key;  // caller's volume identity (e.g. the CSI volume id)
  std::string socket_path;
  bool read_only = false;
  ExportStats stats;
};

class ExportRegistry {
 public:
  ExportRegistry() = default;
  ~ExportRegistry();  // stops every export
  ExportRegistry(const ExportRegistry&) = delete;
  ExportRegistry& operator=(const ExportRegistry&) = delete;

  // Starts an export of the volume at options.socket_path (created; its directory must exist).
  Status Publish(const std::string& volume_key, const VolumeOpener& open,
                 const ExportOptions& options);
  // Stops the export at `socket_path`; OK if there is none.
  Status Unpublish(const std::string& socket_path);
  // Resizes every export of `volume_key` (see Export::Resize), each reopened in its own mode;
  // returns the new size, or NOT_FOUND if the volume is not exported here.
  StatusOr<uint64_t> Resize(const std::string& volume_key, const VolumeOpener& open);
  // Whether `socket_path` is an export of this registry.
  bool Contains(const std::string& socket_path) const;
  // The export at `socket_path`, or nullopt.
  std::optional<PublishedExport> Find(const std::string& socket_path) const;
  std::vector<PublishedExport> List() const;

 private:
  struct Entry {
    std::string volume_key;
    bool read_only = false;
    std::unique_ptr<Export> exp;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> exports_;  // by socket path
};

}  // namespace vdisk::blockdev::vhost
