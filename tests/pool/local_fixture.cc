#include "tests/pool/local_fixture.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "tests/pool/xfs_env.h"

namespace vdisk::pooltest {

namespace {
bool Exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

Status WriteFile(const std::string& path, const std::string& data) {
  auto slash = path.find_last_of('/');
  RETURN_IF_ERROR(fs::MakeDirs(path.substr(0, slash)));
  return fs::WriteFileAtomic(path, data);
}

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  while (struct dirent* e = ::readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  ::closedir(d);
  return n;
}
}  // namespace

PoolBackend LocalBackend(LocalFs fs) {
  return PoolBackend{fs == LocalFs::kXfs ? "LocalXfsReflink" : "LocalRootFsCopy",
                     [fs] { return std::make_unique<LocalPoolFixture>(fs); }};
}

Status LocalPoolFixture::SetUp() {
  std::string parent = RootFsTempParent();
  if (fs_ == LocalFs::kXfs) {
    ASSIGN_OR_RETURN(parent, SharedXfsMount());
  }
  ASSIGN_OR_RETURN(dir_, MakeTempDir(parent, "vdisk-pool-"));
  root_ = dir_ + "/root";
  return Status();
}

StatusOr<std::shared_ptr<blockdev::Pool>> LocalPoolFixture::Open() {
  blockdev::local::LocalPoolOptions o;
  o.name = "local-test";
  o.root = root_;
  // On XFS demand reflink (a silent fallback would test the wrong path); elsewhere detect it.
  o.reflink = fs_ == LocalFs::kXfs ? blockdev::local::LocalPoolOptions::Reflink::kOn
                                   : blockdev::local::LocalPoolOptions::Reflink::kAuto;
  return blockdev::local::OpenLocalPool(o);
}

void LocalPoolFixture::TearDown() {
  if (!dir_.empty()) fs::RemoveAll(dir_).IgnoreError();
}

// What a crash at each step of create/delete would leave behind (see blockdev/local/layout.h).
Status LocalPoolFixture::MakeCrashLeftovers() {
  const std::string s = root_ + "/staging";
  // A volume build whose process died (its intent is not locked by anyone).
  RETURN_IF_ERROR(WriteFile(s + "/v-pvc-crashed-00000000c001.intent",
                            R"({"kind":"v","id":"pvc-crashed-00000000c001","name":"pvc-crashed"})"));
  RETURN_IF_ERROR(WriteFile(s + "/v-pvc-crashed-00000000c001/disk.img", std::string(8192, 'x')));
  // A snapshot build likewise.
  RETURN_IF_ERROR(WriteFile(s + "/s-snap-crashed-00000000c002.intent",
                            R"({"kind":"s","id":"snap-crashed-00000000c002","name":"snap-crashed"})"));
  RETURN_IF_ERROR(WriteFile(s + "/s-snap-crashed-00000000c002/disk.img", std::string(4096, 'y')));
  // A staging directory whose intent was never written, and a half-done removal.
  RETURN_IF_ERROR(WriteFile(s + "/v-nointent-00000000c003/disk.img", "z"));
  RETURN_IF_ERROR(WriteFile(s + "/d-gone-00000000c004-0badf00d/disk.img", "z"));
  // Data moved into place but the record never written (crash before the commit point), and
  // data of a record already removed (crash in the middle of a delete).
  RETURN_IF_ERROR(WriteFile(root_ + "/volumes/pvc-crashed-00000000c005/disk.img", "z"));
  RETURN_IF_ERROR(WriteFile(root_ + "/snapshots/snap-crashed-00000000c006/disk.img", "z"));
  // A torn record write (the temp file of WriteFileAtomic, never renamed).
  RETURN_IF_ERROR(WriteFile(root_ + "/meta/volumes/pvc-crashed-00000000c007.json.tmp.4242.17",
                            R"({"format":1,"id":"pvc-crashed-00000000c007","na)"));
  return Status();
}

bool LocalPoolFixture::LeftoversGone() {
  bool gone = CountEntries(root_ + "/staging") == 0 &&
              !Exists(root_ + "/volumes/pvc-crashed-00000000c005") &&
              !Exists(root_ + "/snapshots/snap-crashed-00000000c006") &&
              !Exists(root_ + "/meta/volumes/pvc-crashed-00000000c007.json.tmp.4242.17");
  return gone;
}

}  // namespace vdisk::pooltest
