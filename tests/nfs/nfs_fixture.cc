#include "tests/nfs/nfs_fixture.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "blockdev/nfs/nfs_store.h"
#include "blockdev/registry.h"

namespace vdisk::pooltest {

namespace {

Status WriteLocal(const std::string& path, const std::string& data, int64_t age_s = 0) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing ", path));
  if (age_s > 0) {
    struct timeval tv[2];
    ::gettimeofday(&tv[0], nullptr);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    if (::utimes(path.c_str(), tv) != 0) return LastErrnoStatus("utimes " + path);
  }
  return Status();
}

bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

size_t Count(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); ++it)
    ++n;
  return n;
}

std::string Claim(const std::string& id, const std::string& name) {
  return absl::StrCat(R"({"format":1,"id":")", id, R"(","name":")", name,
                      R"(","owner":"dead-host:1:0"})", "\n");
}

}  // namespace

Status NfsPoolFixture::SetUp() {
  ASSIGN_OR_RETURN(env_, vdisk::testing::LoadNfsEnv());
  static std::atomic<int> counter{0};
  dir_ = absl::StrCat("/conformance-", ::getpid(), "-", counter++);
  return Status();
}

blockdev::PoolConfig NfsPoolFixture::config() const {
  blockdev::PoolConfig c{"nas", "nfs",
                         {{"server", env_.server},
                          {"export", env_.export_path},
                          {"dir", dir_},
                          {"nfsport", std::to_string(env_.nfs_port)},
                          {"mountport", std::to_string(env_.mount_port)},
                          {"timeout", "20"}}};
  if (reflink_) {
    c.options["local_path"] = env_.local_path;
    c.options["reflink"] = "on";
  } else {
    c.options["reflink"] = "off";
  }
  for (const auto& [k, v] : extra_) c.options[k] = v;
  return c;
}

StatusOr<std::shared_ptr<blockdev::Pool>> NfsPoolFixture::Open() {
  blockdev::RegisterBuiltinBackends();
  blockdev::PoolSet set;
  RETURN_IF_ERROR(set.Add(config()));
  return set.Get("nas");
}

void NfsPoolFixture::TearDown() {
  std::error_code ec;
  std::filesystem::remove_all(local_root(), ec);
}

Status NfsPoolFixture::MakeCrashLeftovers() {
  const std::string r = local_root();
  const int64_t hour = 3600;
  // A volume build whose controller died: staging data, a claim an hour silent, no record.
  RETURN_IF_ERROR(WriteLocal(r + "/names/" + blockdev::nfs::ClaimKey('v', "pvc-crashed"),
                             Claim("pvc-crashed-00000000c001", "pvc-crashed"), hour));
  RETURN_IF_ERROR(WriteLocal(r + "/staging/v-pvc-crashed-00000000c001/disk.img",
                             std::string(8192, 'x')));
  // A snapshot build likewise, already renamed into place but never committed.
  RETURN_IF_ERROR(WriteLocal(r + "/names/" + blockdev::nfs::ClaimKey('s', "snap-crashed"),
                             Claim("snap-crashed-00000000c002", "snap-crashed"), hour));
  RETURN_IF_ERROR(WriteLocal(r + "/snapshots/snap-crashed-00000000c002/disk.img",
                             std::string(4096, 'y')));
  // Staging without any claim, and a removal that stopped midway.
  RETURN_IF_ERROR(WriteLocal(r + "/staging/v-noclaim-00000000c003/disk.img", "z"));
  RETURN_IF_ERROR(WriteLocal(r + "/staging/d-gone-00000000c004-0badf00d/disk.img", "z"));
  // Data of a deleted volume whose removal never ran (record and claim already gone).
  RETURN_IF_ERROR(WriteLocal(r + "/volumes/pvc-deleted-00000000c005/disk.img", "z"));
  // A torn record write (a temporary never renamed) and a torn claim (unreadable).
  RETURN_IF_ERROR(WriteLocal(r + "/meta/volumes/.pvc-x-00000000c007.json.tmp-0123456789abcdef",
                             R"({"format":1,"id":"pvc-x-00000000c007","na)", hour));
  RETURN_IF_ERROR(WriteLocal(r + "/names/" + blockdev::nfs::ClaimKey('v', "pvc-torn"), "{\"fo",
                             hour));
  return Status();
}

bool NfsPoolFixture::LeftoversGone() {
  const std::string r = local_root();
  return Count(r + "/staging") == 0 &&
         !Exists(r + "/snapshots/snap-crashed-00000000c002") &&
         !Exists(r + "/volumes/pvc-deleted-00000000c005") &&
         !Exists(r + "/meta/volumes/.pvc-x-00000000c007.json.tmp-0123456789abcdef") &&
         !Exists(r + "/names/" + blockdev::nfs::ClaimKey('v', "pvc-crashed")) &&
         !Exists(r + "/names/" + blockdev::nfs::ClaimKey('s', "snap-crashed")) &&
         !Exists(r + "/names/" + blockdev::nfs::ClaimKey('v', "pvc-torn"));
}

PoolBackend NfsBackend(bool reflink) {
  return PoolBackend{reflink ? "NfsReflink" : "NfsCopy",
                     [reflink] { return std::make_unique<NfsPoolFixture>(reflink); }};
}

}  // namespace vdisk::pooltest
