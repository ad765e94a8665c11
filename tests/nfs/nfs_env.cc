#include "tests/nfs/nfs_env.h"

#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/env/env_file.h"

namespace vdisk::testing {

blockdev::nfs::NfsTarget NfsEnv::Target(const std::string& e) const {
  blockdev::nfs::NfsTarget t;
  t.server = server;
  t.export_path = e.empty() ? export_path : e;
  t.nfs_port = nfs_port;
  t.mount_port = mount_port;
  return t;
}

std::string NfsEnv::Url(const std::string& path, const std::string& e) const {
  return absl::StrCat("nfs://", server, e.empty() ? export_path : e, path, "?", url_query);
}

StatusOr<NfsEnv> LoadNfsEnv(const std::string& dir_in) {
  std::string dir = dir_in;
  if (dir.empty()) {
    const char* d = std::getenv("VDISK_NFS_DIR");
    if (!d || !*d)
      return absl::FailedPreconditionError(
          "VDISK_NFS_DIR is not set: run through ctest (fixture `nfs`) or export it after "
          "tests/env/ganesha.sh up <dir>");
    dir = d;
  }
  ASSIGN_OR_RETURN(auto kv, ReadEnvFile(dir + "/nfs.env", "nfs"));
  NfsEnv env;
  env.dir = dir;
  env.server = kv["NFS_SERVER"];
  uint32_t port = 0;
  if (absl::SimpleAtoi(kv["NFS_PORT"], &port)) env.nfs_port = static_cast<uint16_t>(port);
  if (absl::SimpleAtoi(kv["MNT_PORT"], &port)) env.mount_port = static_cast<uint16_t>(port);
  env.export_path = kv["NFS_EXPORT"];
  env.local_path = kv["NFS_LOCAL_PATH"];
  env.small_export = kv["NFS_SMALL_EXPORT"];
  env.small_local_path = kv["NFS_SMALL_LOCAL_PATH"];
  env.denied_export = kv["NFS_DENIED_EXPORT"];
  env.squashed_export = kv["NFS_SQUASHED_EXPORT"];
  env.ro_export = kv["NFS_RO_EXPORT"];
  env.url_query = kv["NFS_URL_QUERY"];
  if (env.server.empty() || env.nfs_port == 0 || env.mount_port == 0 || env.export_path.empty())
    return absl::FailedPreconditionError(absl::StrCat(dir, "/nfs.env is incomplete"));
  return env;
}

std::string EnvScript(const std::string& name) {
  const char* src = std::getenv("VDISK_SOURCE_DIR");
  return absl::StrCat(src && *src ? src : VDISK_SOURCE_DIR_DEFAULT, "/tests/env/", name);
}

StatusOr<std::string> RunCommand(const std::string& command) {
  const std::string full = absl::StrCat(command, " 2>&1");
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return LastErrnoStatus("popen");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = ::pclose(p);
  if (rc != 0)
    return absl::InternalError(absl::StrCat("`", command, "` exited with ",
                                            WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ": ", out));
  return out;
}

StatusOr<std::unique_ptr<PrivateGanesha>> PrivateGanesha::Start(const std::string& name) {
  const char* bin = std::getenv("VDISK_BINARY_DIR");
  std::string dir = absl::StrCat(bin && *bin ? bin : "/tmp", "/test-env/ganesha-", name, "-",
                                 ::getpid());
  // Servers of earlier test processes that were killed before their destructor ran.
  std::error_code ec;
  const std::string parent = dir.substr(0, dir.rfind('/'));
  for (auto it = std::filesystem::directory_iterator(parent, ec);
       !ec && it != std::filesystem::directory_iterator(); ++it) {
    const std::string n = it->path().filename().string();
    if (!n.starts_with("ganesha-")) continue;
    int pid = 0;
    if (!absl::SimpleAtoi(n.substr(n.rfind('-') + 1), &pid) || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno == EPERM) continue;  // its process still runs
    (void)RunCommand(absl::StrCat(EnvScript("ganesha.sh"), " down ", it->path().string()));
  }
  std::unique_ptr<PrivateGanesha> g(new PrivateGanesha(dir));
  // Small data file system: the private servers are for restart cases, not capacity.
  RETURN_IF_ERROR(RunCommand(absl::StrCat("GANESHA_DATA_SIZE=4G ", EnvScript("ganesha.sh"),
                                          " up ", dir))
                      .status());
  ASSIGN_OR_RETURN(g->env_, LoadNfsEnv(dir));
  return g;
}

PrivateGanesha::~PrivateGanesha() {
  (void)RunCommand(absl::StrCat(EnvScript("ganesha.sh"), " down ", dir_));
}

Status PrivateGanesha::Restart() {
  return RunCommand(absl::StrCat(EnvScript("ganesha.sh"), " restart ", dir_)).status();
}

Status PrivateGanesha::Kill() {
  return RunCommand(absl::StrCat(EnvScript("ganesha.sh"), " kill ", dir_)).status();
}

Status PrivateGanesha::Up() {
  return RunCommand(absl::StrCat("GANESHA_DATA_SIZE=4G ", EnvScript("ganesha.sh"), " up ", dir_))
      .status();
}

}  // namespace vdisk::testing
