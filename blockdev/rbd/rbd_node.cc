// RbdPool: the node side. Only the kernel RBD client (krbd, `rbd device map`) is used here, and
// only for Block mode; this path cannot run on machines without the rbd kernel module (such as
// the project's CI), where attach() fails with FAILED_PRECONDITION and the user-space path is
// the vhost-user export (blockdev/vhost) over the librbd Device.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/krbd_mappings.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "common/fs.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

namespace {

bool KernelRbdAvailable() { return ::access("/sys/bus/rbd", F_OK) == 0; }

// Runs argv (no shell), returns stdout. The arguments never hold secrets (keys go in files).
StatusOr<std::string> Run(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return LastErrnoStatus("pipe");
  pid_t pid = ::fork();
  if (pid < 0) return LastErrnoStatus("fork");
  if (pid == 0) {
    ::dup2(out[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) text.append(buf, n);
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return absl::InternalError(absl::StrCat(argv[0], " ", argv.size() > 1 ? argv[1] : "", " ",
                                            argv.size() > 2 ? argv[2] : "", " failed (status ",
                                            status, ")"));
  return text;
}

}  // namespace

StatusOr<Attachment> RbdPool::attach(const std::string& id, bool read_only,
                                     const Params& secrets) {
  ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(id));
  if (!KernelRbdAvailable())
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", id, ": this node has no kernel RBD client (/sys/bus/rbd is missing; "
        "`modprobe rbd`); attach RBD volumes through the vhost-user export instead"));
  if (rec.mode == VolumeMode::kFilesystem)
    return absl::UnimplementedError(absl::StrCat(
        "volume ", id, ": Filesystem-mode RBD volumes are not attachable by vdisk yet; use "
        "volumeMode: Block"));
  const std::string spec = absl::StrCat(rec.rbd_pool, "/", rec.image);
  // Already mapped with the same read-only state (idempotent attach)? A read-only attach never
  // gets the staged read-write mapping: krbd maps the image a second time, read-only.
  if (auto listed = Run({"rbd", "device", "list", "--format", "json"}); listed.ok()) {
    std::string dev = FindReusableMapping(*listed, rec.rbd_pool, rec.image, read_only, KernelDeviceReadOnly);
    if (!dev.empty()) return Attachment{dev, true};
  }
  std::vector<std::string> argv = {"rbd", "device", "map", spec};
  if (read_only) argv.push_back("--read-only");
  if (!options_.cluster.conf.empty()) argv.insert(argv.end(), {"-c", options_.cluster.conf});
  if (!options_.cluster.mon_host.empty())
    argv.insert(argv.end(), {"-m", options_.cluster.mon_host});
  std::string user = options_.cluster.user, key = options_.cluster.key;
  if (auto u = secrets.find("userID"); u != secrets.end()) user = u->second;
  if (auto k = secrets.find("userKey"); k != secrets.end()) key = k->second;
  if (!user.empty()) argv.insert(argv.end(), {"--id", user});
  std::string keyfile;
  if (!key.empty()) {
    char tmpl[] = "/tmp/vdisk-rbd-key-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) return LastErrnoStatus("mkstemp for the key file");
    keyfile = tmpl;
    ::fchmod(fd, 0600);
    bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
    ::close(fd);
    if (!ok) {
      ::unlink(tmpl);
      return absl::InternalError("writing the temporary key file");
    }
    argv.insert(argv.end(), {"--keyfile", keyfile});
  } else if (!options_.cluster.keyring.empty()) {
    argv.insert(argv.end(), {"--keyring", options_.cluster.keyring});
  }
  auto out = Run(argv);
  if (!keyfile.empty()) ::unlink(keyfile.c_str());
  if (!out.ok()) return Annotate(out.status(), absl::StrCat("mapping ", spec));
  std::string dev = *out;
  while (!dev.empty() && (dev.back() == '\n' || dev.back() == ' ')) dev.pop_back();
  spdlog::info("rbd pool {}: mapped {} ({}) at {}", options_.name, id, spec, dev);
  return Attachment{dev, true};
}

Status RbdPool::detach(const std::string& id, const Attachment& attachment) {
  if (attachment.path.empty() || !attachment.path.starts_with("/dev/rbd")) return Status();
  struct stat st;
  if (::stat(attachment.path.c_str(), &st) != 0) return Status();  // already unmapped
  auto out = Run({"rbd", "device", "unmap", attachment.path});
  if (!out.ok()) return Annotate(out.status(), absl::StrCat("unmapping ", attachment.path));
  spdlog::info("rbd pool {}: unmapped {} from {}", options_.name, id, attachment.path);
  return Status();
}

Status RbdPool::node_expand(const std::string& id, const Attachment& attachment) {
  // krbd follows the image header: a mapped device shows the new size by itself.
  return ReadVolume(id).status();
}

}  // namespace vdisk::blockdev::rbd
