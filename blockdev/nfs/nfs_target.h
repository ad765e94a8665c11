// Where an NFS export is and how vdisk reaches it (NFSv3 over TCP, AUTH_SYS), and the "nfs:"
// device URI. Pure values and parsing; thread-safe.
//
// Device URIs (scheme "nfs", registered by blockdev/nfs/register.h):
//   nfs://<server>[:<nfs-port>]/<path to the image>[?export=<export>&nfsport=<port>
//        &mountport=<port>&uid=<n>&gid=<n>]
// The export mounted is `export` when given (a prefix of the path), else the directory of the
// image (as QEMU's and libnfs' URLs do; servers such as ganesha serve sub-directory mounts).
// Ports default to what the server's rpcbind says (nfsport / mountport are libnfs' own URL
// options, for servers without rpcbind). AUTH_SYS carries no secret, so URIs never hold one.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace vdisk::blockdev::nfs {

struct NfsTarget {
  std::string server;       // host name or IPv4 address
  std::string export_path;  // absolute, no trailing '/', e.g. "/vdisk"
  uint16_t nfs_port = 0;    // 0: ask rpcbind
  uint16_t mount_port = 0;  // 0: ask rpcbind
  int uid = -1;             // AUTH_SYS identity; -1: the process's own
  int gid = -1;

  // "nfs://server/export" plus the non-default options, for logs and errors.
  std::string Describe() const;
  // The libnfs URL of `path` (absolute within the export, or empty for the export itself),
  // with the port and identity options: what nfs_parse_url_dir() and libnfs' tools take.
  std::string LibnfsUrl(const std::string& path = "") const;
  bool operator==(const NfsTarget&) const = default;
};

// Checks a server name, export path and ports (INVALID_ARGUMENT naming the field).
Status ValidateTarget(const NfsTarget& target);

// An "nfs:" device URI, the part after the scheme ("//server/export/dir/disk.img?...").
struct NfsUri {
  NfsTarget target;
  std::string path;  // of the image, relative to the export, starting with '/'
};
StatusOr<NfsUri> ParseNfsUri(const std::string& rest);
// The inverse ("nfs://...", with the scheme), options only where they are not defaults.
std::string FormatNfsUri(const NfsTarget& target, const std::string& path);

// Joins export-relative path pieces ("/a" + "b" -> "/a/b"); no normalisation.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace vdisk::blockdev::nfs
