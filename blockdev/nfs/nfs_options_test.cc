#include "blockdev/nfs/nfs_options.h"

#include <gtest/gtest.h>

#include "blockdev/nfs/nfs_store.h"

namespace vdisk::blockdev::nfs {
namespace {

TEST(NfsPoolConfig, FromKeyValues) {
  PoolConfig c{"nas", "nfs",
               {{"server", "10.1.2.3"}, {"export", "/srv/vms/"}, {"dir", "/vdisk/"},
                {"nfsport", "2050"}, {"mountport", "20049"}, {"local_path", "/srv/vms"},
                {"reflink", "on"}, {"mount_options", "nfsvers=4.1,hard"},
                {"abandon_after", "30"}, {"timeout", "5"}}};
  auto o = ParseNfsPoolConfig(c);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->name, "nas");
  EXPECT_EQ(o->target.server, "10.1.2.3");
  EXPECT_EQ(o->target.export_path, "/srv/vms");
  EXPECT_EQ(o->dir, "/vdisk");
  EXPECT_EQ(o->target.nfs_port, 2050);
  EXPECT_EQ(o->target.mount_port, 20049);
  EXPECT_EQ(o->local_path, "/srv/vms");
  EXPECT_EQ(o->reflink, NfsPoolOptions::Reflink::kOn);
  EXPECT_EQ(o->abandon_after_s, 30);
  EXPECT_EQ(o->timeout_s, 5);
}

TEST(NfsPoolConfig, FromPoolFlagSpec) {
  auto flag = ParsePoolFlag("nfs://nas.example/exports/vm?dir=/pool&mountport=20048");
  ASSERT_TRUE(flag.ok()) << flag.status();
  auto o = ParseNfsPoolConfig(*flag);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->name, "nfs");
  EXPECT_EQ(o->target.server, "nas.example");
  EXPECT_EQ(o->target.export_path, "/exports/vm");
  EXPECT_EQ(o->dir, "/pool");
  EXPECT_EQ(o->target.mount_port, 20048);
  EXPECT_EQ(o->reflink, NfsPoolOptions::Reflink::kAuto);
}

TEST(NfsPoolConfig, Rejects) {
  auto bad = [](Params p) {
    auto o = ParseNfsPoolConfig(PoolConfig{"x", "nfs", std::move(p)});
    EXPECT_FALSE(o.ok());
    if (!o.ok()) {
      EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << o.status();
    }
  };
  bad({{"export", "/e"}});                                          // no server
  bad({{"server", "h"}});                                           // no export
  bad({{"server", "h"}, {"export", "e"}});                          // relative export
  bad({{"server", "h"}, {"export", "/e"}, {"colour", "blue"}});     // unknown option
  bad({{"server", "h"}, {"export", "/e"}, {"nfsport", "0"}});
  bad({{"server", "h"}, {"export", "/e"}, {"dir", "/a/../b"}});
  bad({{"server", "h"}, {"export", "/e"}, {"local_path", "rel"}});
  bad({{"server", "h"}, {"export", "/e"}, {"reflink", "on"}});       // needs local_path
  bad({{"server", "h"}, {"export", "/e"}, {"reflink", "maybe"}});
  bad({{"server", "h"}, {"export", "/e"}, {"mount_options", "hard,x y"}});
  bad({{"server", "h"}, {"export", "/e"}, {"mount_options", "a;b"}});
  bad({{"server", "h"}, {"export", "/e"}, {"timeout", "0"}});
  bad({{"server", "h;reboot"}, {"export", "/e"}});
}

TEST(NfsVolumeParams, Preallocation) {
  EXPECT_FALSE(ParseNfsVolumeParams({})->preallocate);
  EXPECT_TRUE(ParseNfsVolumeParams({{"preallocation", "full"}})->preallocate);
  EXPECT_FALSE(ParseNfsVolumeParams({{"preallocation", "none"}, {"pool", "nas"},
                                     {"csi.storage.k8s.io/pvc/name", "x"}})
                   ->preallocate);
  EXPECT_EQ(ParseNfsVolumeParams({{"preallocation", "half"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNfsVolumeParams({{"mountOptions", "x"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NodeMount, Arguments) {
  NfsPoolOptions o;
  o.target = {"10.1.2.3", "/srv/vms"};
  auto argv = NodeMountCommand(o, "/vdisk/volumes/pvc-1-abc", "/var/lib/vdisk/nfs/nas/pvc-1-abc",
                               false);
  EXPECT_EQ(argv, (std::vector<std::string>{"mount", "-t", "nfs", "-o", "rw",
                                            "10.1.2.3:/srv/vms/vdisk/volumes/pvc-1-abc",
                                            "/var/lib/vdisk/nfs/nas/pvc-1-abc"}));
  // Pool options, ports for servers without rpcbind, read-only; ro/rw in the options are ours.
  o.mount_options = "nfsvers=3,hard,rw,nolock";
  o.target.nfs_port = 2050;
  o.target.mount_port = 20048;
  argv = NodeMountCommand(o, "/volumes/v", "/m", true);
  EXPECT_EQ(argv[4], "nfsvers=3,hard,nolock,port=2050,mountport=20048,ro");
  EXPECT_EQ(argv[5], "10.1.2.3:/srv/vms/volumes/v");
  // Ports already named by the operator win.
  o.mount_options = "port=2049";
  argv = NodeMountCommand(o, "/volumes/v", "/m", false);
  EXPECT_EQ(argv[4], "port=2049,mountport=20048,rw");
  // The export's root as the export.
  o.target.export_path = "/";
  o.mount_options.clear();
  o.target.nfs_port = o.target.mount_port = 0;
  argv = NodeMountCommand(o, "/volumes/v", "/m", false);
  EXPECT_EQ(argv[5], "10.1.2.3:/volumes/v");
}

TEST(NfsStore, ClaimKeysAreFixedAndPathSafe) {
  EXPECT_EQ(ClaimKey('v', "pvc-1"), ClaimKey('v', "pvc-1"));
  EXPECT_NE(ClaimKey('v', "pvc-1"), ClaimKey('s', "pvc-1"));
  EXPECT_NE(ClaimKey('v', "pvc-1"), ClaimKey('v', "pvc-2"));
  const std::string k = ClaimKey('v', std::string(1000, '/') + "../../etc");
  EXPECT_EQ(k.size(), 2u + 32u);
  EXPECT_EQ(k.find('/'), std::string::npos);
}

}  // namespace
}  // namespace vdisk::blockdev::nfs
