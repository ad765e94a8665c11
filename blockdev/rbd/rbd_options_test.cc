// Unit tests of the RBD backend's pure parts: pool options, StorageClass parameters, image
// features, ids, journal records, device URIs. (Everything that talks to Ceph is in tests/rbd.)
#include <gtest/gtest.h>

#include "blockdev/rbd/rbd_device.h"
#include "blockdev/rbd/rbd_options.h"
#include "blockdev/rbd/records.h"

namespace vdisk::blockdev::rbd {
namespace {

PoolConfig Config(Params options) {
  PoolConfig c;
  c.name = "ceph";
  c.kind = "rbd";
  c.options = std::move(options);
  return c;
}

TEST(RbdOptions, DefaultsAndOverrides) {
  auto o = ParseRbdPoolConfig(Config({{"conf", "/etc/ceph/ceph.conf"}, {"user", "client.vdisk"},
                                      {"keyring", "/etc/ceph/vdisk.keyring"},
                                      {"rbd_pool", "vms"}, {"clone_soft_depth", "2"},
                                      {"clone_hard_depth", "3"}}),
                              {});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->name, "ceph");
  EXPECT_EQ(o->cluster.conf, "/etc/ceph/ceph.conf");
  EXPECT_EQ(o->cluster.user, "vdisk");
  EXPECT_EQ(o->defaults.rbd_pool, "vms");
  EXPECT_EQ(o->defaults.features, kDefaultFeatures);
  EXPECT_EQ(o->defaults.clone_soft_depth, 2);
  EXPECT_EQ(o->defaults.clone_hard_depth, 3);
  EXPECT_EQ(o->cluster.op_timeout_s, 120);  // OSD operations never wait for ever by default
  auto waits = ParseRbdPoolConfig(Config({{"conf", "/c"}, {"user", "vdisk"}, {"keyring", "/k"},
                                                {"op_timeout", "0"}}),
                                        {});
  ASSERT_TRUE(waits.ok()) << waits.status();
  EXPECT_EQ(waits->cluster.op_timeout_s, 0);
}

TEST(RbdOptions, SpecFromPoolFlag) {
  auto o = ParseRbdPoolConfig(Config({{"spec", "vms?conf=/x/ceph.conf&user=vdisk&keyring=/x/k"}}),
                              {});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->defaults.rbd_pool, "vms");
  EXPECT_EQ(o->cluster.conf, "/x/ceph.conf");
  EXPECT_EQ(o->cluster.keyring, "/x/k");
}

TEST(RbdOptions, SecretsOverrideConfigAndNeedBothFields) {
  auto o = ParseRbdPoolConfig(Config({{"conf", "/c"}, {"user", "admin"}, {"keyring", "/k"}}),
                              {{"userID", "vdisk"}, {"userKey", "AQBsecret=="}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->cluster.user, "vdisk");
  EXPECT_EQ(o->cluster.key, "AQBsecret==");
  EXPECT_TRUE(o->cluster.keyring.empty());
  auto half = ParseRbdPoolConfig(Config({{"conf", "/c"}}), {{"userID", "vdisk"}});
  EXPECT_EQ(half.status().code(), absl::StatusCode::kInvalidArgument);
  // The message never echoes a key.
  auto bad = ParseRbdPoolConfig(Config({{"conf", "/c"}, {"key", "AQBsecret=="}}), {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(bad.status().message()).find("AQBsecret"), std::string::npos);
}

TEST(RbdOptions, APoolSaysWhichIdentityItUses) {
  // No identity of its own and no secrets: refused, never the conf's default user.
  auto none = ParseRbdPoolConfig(Config({{"conf", "/c"}}), {});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(std::string(none.status().message()).find("node-stage-secret-name"), std::string::npos);
  // With the call's secrets it works.
  auto secrets = ParseRbdPoolConfig(Config({{"conf", "/c"}}), {{"userID", "vdisk"}, {"userKey", "AQBsecret=="}});
  ASSERT_TRUE(secrets.ok()) << secrets.status();
  EXPECT_EQ(secrets->cluster.user, "vdisk");
  // Half an identity is a configuration error (the conf would supply the other half).
  EXPECT_EQ(ParseRbdPoolConfig(Config({{"conf", "/c"}, {"user", "vdisk"}}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRbdPoolConfig(Config({{"conf", "/c"}, {"keyring", "/k"}}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto own = ParseRbdPoolConfig(Config({{"conf", "/c"}, {"user", "vdisk"}, {"keyring", "/k"}}), {});
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->cluster.user, "vdisk");
  EXPECT_EQ(own->cluster.keyring, "/k");
}

TEST(RbdOptions, RejectsBadConfig) {
  EXPECT_EQ(ParseRbdPoolConfig(Config({}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);  // no cluster
  EXPECT_EQ(ParseRbdPoolConfig(Config({{"conf", "/c"}, {"bogus", "1"}}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRbdPoolConfig(Config({{"conf", "/c"}, {"rbd_pool", "a.b"}}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRbdPoolConfig(Config({{"conf", "/c"}, {"clone_soft_depth", "9"},
                                       {"clone_hard_depth", "3"}}),
                               {})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* t : {"-1", "1h", "", "86401"})
    EXPECT_EQ(ParseRbdPoolConfig(Config({{"conf", "/c"}, {"op_timeout", t}}), {}).status().code(),
              absl::StatusCode::kInvalidArgument) << t;
  EXPECT_EQ(ParseRbdPoolConfig(Config({{"conf", "/c"}, {"keyfile", "/nonexistent/key"}}), {})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RbdOptions, StorageClassParams) {
  VolumeOptions d;
  auto v = ParseVolumeParams(d, {{"pool", "ceph"},
                                 {"csi.storage.k8s.io/pvc/name", "x"},
                                 {"rbdPool", "fast"},
                                 {"imageFeatures", "layering"},
                                 {"cloneHardDepth", "5"}});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->rbd_pool, "fast");
  EXPECT_EQ(v->features, static_cast<uint64_t>(RBD_FEATURE_LAYERING));
  EXPECT_EQ(v->clone_hard_depth, 5);
  auto hard_only = ParseVolumeParams(d, {{"cloneHardDepth", "0"}});
  ASSERT_TRUE(hard_only.ok()) << hard_only.status();
  EXPECT_EQ(hard_only->clone_soft_depth, 0);
  EXPECT_FALSE(ParseVolumeParams(d, {{"cloneHardDepth", "1"}, {"cloneSoftDepth", "3"}}).ok());
  EXPECT_EQ(ParseVolumeParams(d, {{"fstype", "ext4"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseVolumeParams(d, {{"cloneSoftDepth", "-1"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RbdOptions, Features) {
  auto f = ParseFeatures("layering, exclusive-lock,object-map,fast-diff,deep-flatten");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f, kDefaultFeatures);
  EXPECT_EQ(FeaturesToString(*f), "layering,exclusive-lock,object-map,fast-diff,deep-flatten");
  EXPECT_FALSE(ParseFeatures("layering,striping").ok());
  EXPECT_FALSE(ParseFeatures("exclusive-lock").ok());            // no layering
  EXPECT_FALSE(ParseFeatures("layering,object-map").ok());       // needs exclusive-lock
  EXPECT_FALSE(ParseFeatures("layering,exclusive-lock,fast-diff").ok());  // needs object-map
}

TEST(RbdIds, RoundTripAndStrictParsing) {
  std::string image = NewImageName();
  std::string snap = NewSnapName();
  EXPECT_EQ(image.size(), 22u);
  EXPECT_NE(image, NewImageName());
  std::string vid = MakeVolumeId("rbd", image);
  auto v = ParseVolumeId(vid);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->rbd_pool, "rbd");
  EXPECT_EQ(v->image, image);
  std::string sid = MakeSnapshotId("rbd", image, snap);
  auto s = ParseSnapshotId(sid);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->snap, snap);
  for (const std::string& bad : std::vector<std::string>{"", "rbd", "rbd.", "rbd.image", "../x", "rbd.vdisk-0123",
                                "r.b.vdisk-0123456789abcdef", "rbd.vdisk-0123456789ABCDEF",
                                sid}) {
    EXPECT_EQ(ParseVolumeId(bad).status().code(), absl::StatusCode::kNotFound) << bad;
  }
  EXPECT_EQ(ParseSnapshotId(vid).status().code(), absl::StatusCode::kNotFound);
}

TEST(RbdRecords, JsonRoundTrip) {
  VolumeRecord r;
  r.id = "rbd.vdisk-0123456789abcdef";
  r.name = "pvc-1";
  r.rbd_pool = "rbd";
  r.image = "vdisk-0123456789abcdef";
  r.image_id = "10ab";
  r.size_bytes = 1 << 30;
  r.mode = VolumeMode::kFilesystem;
  r.access_modes = {AccessMode::kMultiNodeMultiWriter};
  r.params = {{"rbdPool", "rbd"}};
  r.source = {VolumeSource::Kind::kSnapshot, "rbd.vdisk-0123456789abcdef.snap-0123456789abcdef"};
  r.state = RecordState::kPending;
  r.flatten_pending = true;
  auto back = VolumeRecordFromJson(ToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, r.name);
  EXPECT_EQ(back->mode, r.mode);
  EXPECT_EQ(back->access_modes, r.access_modes);
  EXPECT_EQ(back->source, r.source);
  EXPECT_EQ(back->state, RecordState::kPending);
  EXPECT_TRUE(back->flatten_pending);
  EXPECT_EQ(VolumeRecordFromJson("{not json").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(VolumeRecordFromJson(R"({"id":"x","state":"weird","rbd_pool":"p","image":"i"})")
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST(RbdUri, Parse) {
  auto u = ParseRbdUri("rbd/img@s1?conf=/x/ceph.conf&id=client.vdisk&keyring=/x/k&cache=false");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->spec.pool, "rbd");
  EXPECT_EQ(u->spec.image, "img");
  EXPECT_EQ(u->spec.snap, "s1");
  EXPECT_EQ(u->cluster.user, "vdisk");
  EXPECT_EQ(u->cluster.config.at("rbd_cache"), "false");
  auto d = ParseRbdUri("rbd/img");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cluster.conf, "/etc/ceph/ceph.conf");
  EXPECT_FALSE(ParseRbdUri("img").ok());
  EXPECT_FALSE(ParseRbdUri("rbd/img?key=AQB").ok());
  EXPECT_FALSE(ParseRbdUri("rbd/img?bogus=1").ok());
  EXPECT_FALSE(ParseRbdUri("rbd/ns/img").ok());
}

}  // namespace
}  // namespace vdisk::blockdev::rbd
