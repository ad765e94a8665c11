// The NFS server of the tests: the shared one of the CTest fixture `nfs` (tests/env/ganesha.sh,
// read from $VDISK_NFS_DIR/nfs.env), or a private one a test starts for itself when it must
// stop or restart the server (PrivateGanesha). A missing environment is a test FAILURE, never a
// skip.
#pragma once

#include <memory>
#include <string>

#include "blockdev/nfs/nfs_target.h"
#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::testing {

struct NfsEnv {
  std::string dir;            // the server's directory (ganesha.sh)
  std::string server;         // 127.0.0.1
  uint16_t nfs_port = 0;
  uint16_t mount_port = 0;
  std::string export_path;    // /vdisk
  std::string local_path;     // the export's directory on this host (same file system)
  std::string small_export;   // /small (320 MiB)
  std::string small_local_path;
  std::string denied_export;  // /denied (this host may not mount it)
  std::string squashed_export;  // /squashed (everyone is nobody; nothing may be created)
  std::string ro_export;      // /readonly
  std::string url_query;      // nfsport=..&mountport=..

  blockdev::nfs::NfsTarget Target(const std::string& export_path = "") const;
  // A libnfs URL of `path` within `export_path` (default: the main export), for nfs-cat etc.
  std::string Url(const std::string& path, const std::string& export_path = "") const;
};

StatusOr<NfsEnv> LoadNfsEnv(const std::string& dir = "");  // "" = $VDISK_NFS_DIR

// A ganesha of its own (own directory under the build tree, own ports), for tests that kill or
// restart the server. Stopped and removed when destroyed.
class PrivateGanesha {
 public:
  static StatusOr<std::unique_ptr<PrivateGanesha>> Start(const std::string& name);
  ~PrivateGanesha();
  const NfsEnv& env() const { return env_; }
  Status Restart();  // SIGTERM, start again on the same ports
  Status Kill();     // SIGKILL (a crash); Up() brings it back
  Status Up();

 private:
  explicit PrivateGanesha(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  NfsEnv env_;
};

// Runs a shell command, returning its stdout; INTERNAL with stderr on a non-zero exit.
StatusOr<std::string> RunCommand(const std::string& command);

// The source tree's tests/env directory.
std::string EnvScript(const std::string& name);

}  // namespace vdisk::testing
