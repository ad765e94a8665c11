#include "blockdev/nfs/nfs_target.h"

#include <gtest/gtest.h>

namespace vdisk::blockdev::nfs {
namespace {

TEST(NfsUri, ExportDefaultsToTheImageDirectory) {
  auto u = ParseNfsUri("//10.0.0.5/srv/vm/disk.img");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->target.server, "10.0.0.5");
  EXPECT_EQ(u->target.export_path, "/srv/vm");
  EXPECT_EQ(u->path, "/disk.img");
  EXPECT_EQ(u->target.nfs_port, 0);
}

TEST(NfsUri, ExplicitExportPortsAndIdentity) {
  auto u = ParseNfsUri(
      "//nas.example:2050/vdisk/volumes/v1/disk.img?export=/vdisk&mountport=20048&uid=107&gid=0");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->target.server, "nas.example");
  EXPECT_EQ(u->target.nfs_port, 2050);
  EXPECT_EQ(u->target.mount_port, 20048);
  EXPECT_EQ(u->target.export_path, "/vdisk");
  EXPECT_EQ(u->path, "/volumes/v1/disk.img");
  EXPECT_EQ(u->target.uid, 107);
  EXPECT_EQ(u->target.gid, 0);
  // Round trip.
  EXPECT_EQ(FormatNfsUri(u->target, u->path),
            "nfs://nas.example/vdisk/volumes/v1/disk.img?export=/vdisk&nfsport=2050&"
            "mountport=20048&uid=107&gid=0");
  auto again = ParseNfsUri(FormatNfsUri(u->target, u->path).substr(4));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->target, u->target);
  EXPECT_EQ(again->path, u->path);
}

TEST(NfsUri, TheRegistryStripsTheSlashes) {
  auto u = ParseNfsUri("10.0.0.5/srv/vm/disk.img");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->target.export_path, "/srv/vm");
}

TEST(NfsUri, RootExport) {
  auto u = ParseNfsUri("//h/disk.img");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->target.export_path, "/");
  EXPECT_EQ(u->path, "/disk.img");
  EXPECT_EQ(u->target.LibnfsUrl(), "nfs://h/?version=3");
}

TEST(NfsUri, LibnfsUrlCarriesPorts) {
  NfsTarget t{"127.0.0.1", "/vdisk", 2049, 20048};
  EXPECT_EQ(t.LibnfsUrl(), "nfs://127.0.0.1/vdisk?nfsport=2049&mountport=20048&version=3");
  EXPECT_EQ(t.LibnfsUrl("/volumes/a"),
            "nfs://127.0.0.1/vdisk/volumes/a?nfsport=2049&mountport=20048&version=3");
  EXPECT_EQ(t.Describe(), "nfs://127.0.0.1/vdisk?nfsport=2049&mountport=20048");
}

TEST(NfsUri, Rejects) {
  for (const char* bad : {
           "/no/slashes", "//", "//host", "", "///x", "//host/", "//host/dir/", "//host/a/../b",
           "//host/a/./b", "//host/a//b", "//host/a b", "//host/a%20b", "//ho st/a",
           "//host/x?export=/other", "//host/x/y?export=/x/y", "//host/x?nfsport=0",
           "//host/x?nfsport=70000", "//host/x?uid=-1", "//host/x?colour=blue",
           "//host:abc/x", "//host/x?export=relative",
       }) {
    auto u = ParseNfsUri(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(NfsTarget, Validate) {
  EXPECT_TRUE(ValidateTarget({"127.0.0.1", "/vdisk"}).ok());
  EXPECT_TRUE(ValidateTarget({"nas-1.example.com", "/"}).ok());
  EXPECT_FALSE(ValidateTarget({"", "/vdisk"}).ok());
  EXPECT_FALSE(ValidateTarget({"h", "vdisk"}).ok());
  EXPECT_FALSE(ValidateTarget({"h", "/vdisk?x=1"}).ok());
  EXPECT_FALSE(ValidateTarget({"h;rm", "/vdisk"}).ok());
  EXPECT_FALSE(ValidateTarget({"h", "/a/../../etc"}).ok());
}

TEST(NfsPath, Join) {
  EXPECT_EQ(JoinPath("/", "a"), "/a");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("", "b"), "/b");
  EXPECT_EQ(JoinPath("/a", ""), "/a");
}

}  // namespace
}  // namespace vdisk::blockdev::nfs
