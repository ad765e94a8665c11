#include "csi/vhost_publish.h"

#include <errno.h>
#include <openssl/sha.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "csi/mounter.h"
#include "nlohmann/json.hpp"

namespace vdisk::csi {

namespace {
constexpr size_t kHashHexDigits = 16;
}  // namespace

std::string VhostExportDir(const std::string& vhost_dir, const std::string& volume_id,
                           const std::string& target) {
  const std::string key = volume_id + '\0' + target;
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), md);
  const std::string hex =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), sizeof md));
  return vhost_dir + "/" + hex.substr(0, kHashHexDigits);
}

Status CheckVhostDir(const std::string& vhost_dir) {
  if (vhost_dir.empty() || vhost_dir.front() != '/')
    return absl::InvalidArgumentError(absl::StrCat("vhost directory '", vhost_dir, "' must be absolute"));
  const size_t longest = vhost_dir.size() + 1 + kHashHexDigits + 1 + sizeof(kVhostSocketName) - 1;
  if (longest >= sizeof(sockaddr_un{}.sun_path))
    return absl::InvalidArgumentError(absl::StrCat(
        "vhost directory '", vhost_dir, "' is too long: its sockets would take ", longest,
        " bytes, a Unix socket path at most ", sizeof(sockaddr_un{}.sun_path) - 1,
        " (use a short node-local directory, e.g. /var/lib/vdisk-csi/vhost)"));
  return Status();
}

Status MakeVhostExportDir(const std::string& export_dir) {
  RETURN_IF_ERROR(fs::MakeDirs(export_dir, 0755));
  // MakeDirs keeps the mode of a directory that already exists; make sure of this one's.
  if (::chmod(export_dir.c_str(), 0755) != 0) return LastErrnoStatus(absl::StrCat("chmod ", export_dir));
  return Status();
}

std::string VhostExportInfoJson(const VhostExportInfo& info) {
  nlohmann::json j = {
      {"format", 1},
      {"type", "vhost-user-blk"},
      {"socket", kVhostSocketName},
      {"volume_id", info.volume_id},
      {"size_bytes", info.size_bytes},
      {"logical_block_size", info.logical_block_size},
      {"num_queues", info.num_queues},
      {"read_only", info.read_only},
      {"serial", info.serial},
  };
  return j.dump(2) + "\n";
}

Status WriteVhostExportInfo(const std::string& export_dir, const VhostExportInfo& info) {
  return fs::WriteFileAtomic(export_dir + "/" + kVhostInfoName, VhostExportInfoJson(info), 0644);
}

Status MountVhostExportDir(const std::string& export_dir, const std::string& target) {
  // The target itself, not its parents: kubelet makes the parent (the pod's volume directory);
  // a restored publish whose pod directory is gone must not bring it back.
  // (Confined like every target: csi/mounter.h.)
  Status made = mount::MakeTargetDir(target);
  if (absl::IsNotFound(made))
    return absl::FailedPreconditionError(absl::StrCat("the parent of target_path ", target, " does not exist"));
  RETURN_IF_ERROR(made);
  ASSIGN_OR_RETURN(bool mounted, mount::IsMountPoint(target));
  if (mounted) return Status();
  // Read-only: the pod can connect to the socket (connect(2) needs no writable mount) and read
  // the description, but cannot create files in the node's directory (an importer writing a
  // disk.img there fails at once with EROFS).
  return mount::BindMount(export_dir, target, /*readonly=*/true, MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

Status RemoveVhostExportDir(const std::string& export_dir) { return fs::RemoveAll(export_dir); }

}  // namespace vdisk::csi
