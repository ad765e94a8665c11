// Unit tests of the iSCSI backend's pure parts: URIs and portals, pool options and CHAP secrets,
// initiator names, tgtadm output, the journal format, the EXTENDED COPY parameter list.
#include <gtest/gtest.h>

#include "blockdev/iscsi/iscsi_options.h"
#include "blockdev/iscsi/journal.h"
#include "blockdev/iscsi/lun_address.h"
#include "blockdev/iscsi/target_manager.h"
#include "blockdev/iscsi/xcopy.h"

namespace vdisk::blockdev::iscsi {
namespace {

using absl::StatusCode;

TEST(IscsiUri, ParsesPortalTargetLunAndOptions) {
  auto u = ParseIscsiUri("//127.0.0.1:3261/iqn.2024-01.io.vdisk%3Avol-1/1?initiator=iqn.2024-01.io.vdisk:me&timeout=5");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->address.portal, "127.0.0.1:3261");
  EXPECT_EQ(u->address.iqn, "iqn.2024-01.io.vdisk:vol-1");
  EXPECT_EQ(u->address.lun, 1);
  EXPECT_EQ(u->options.initiator, "iqn.2024-01.io.vdisk:me");
  EXPECT_EQ(u->options.command_timeout_s, 5);
  EXPECT_EQ(ParseIscsiUri("host/iqn.2024-01.x:y/0")->address.portal, "host:3260");
  EXPECT_EQ(ParseIscsiUri("user%pw@host/iqn.2024-01.x:y/0").status().code(), StatusCode::kInvalidArgument)
      << "credentials never go into a URI";
  EXPECT_EQ(ParseIscsiUri("host/iqn.2024-01.x:y").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIscsiUri("host/NotAnIqn/1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIscsiUri("host/iqn.2024-01.x:y/1?nope=1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIscsiUri("host:99999/iqn.2024-01.x:y/1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*NormalizePortal("[::1]:3262"), "[::1]:3262");
}

TEST(IscsiOptions, RequiredKnownAndSecrets) {
  PoolConfig c{"p", "iscsi", {{"portal", "10.0.0.5"}, {"backing_dir", "/srv/luns"}}, "Node_1.example"};
  auto o = ParseIscsiPoolConfig(c, {});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->portal, "10.0.0.5:3260");
  EXPECT_TRUE(o->manages_targets());
  EXPECT_FALSE(o->chap.enabled());
  c.options["target_host"] = "none";
  c.options.erase("backing_dir");
  EXPECT_FALSE(ParseIscsiPoolConfig(c, {})->manages_targets());
  c.options["target_host"] = "ssh -o BatchMode=yes root@storage";
  EXPECT_EQ(ParseIscsiPoolConfig(c, {}).status().code(), StatusCode::kInvalidArgument) << "backing_dir needed";
  c.options["backing_dir"] = "/srv/luns";
  EXPECT_EQ(ParseIscsiPoolConfig(c, {})->target_host.front(), "ssh");
  c.options["bogus"] = "1";
  EXPECT_EQ(ParseIscsiPoolConfig(c, {}).status().code(), StatusCode::kInvalidArgument);
  c.options.erase("bogus");
  auto chap = ParseIscsiPoolConfig(c, {{kChapUserKey, "u"}, {kChapPasswordKey, "secret-123456"}});
  ASSERT_TRUE(chap.ok());
  EXPECT_EQ(chap->chap.user, "u");
  auto half = ParseIscsiPoolConfig(c, {{kChapUserKey, "u"}});
  EXPECT_EQ(half.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateIscsiParams({{"preallocation", "full"}}).code(), StatusCode::kOk);
  EXPECT_EQ(ValidateIscsiParams({{"preallocation", "some"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateIscsiParams({{"rbdPool", "x"}}).code(), StatusCode::kInvalidArgument);
}

TEST(IscsiOptions, NodeInitiatorNamesAreIqnSafeAndDistinct) {
  EXPECT_EQ(NodeInitiator("iqn.2024-01.io.vdisk:node", "worker-1"), "iqn.2024-01.io.vdisk:node.worker-1");
  const std::string a = NodeInitiator("iqn.2024-01.io.vdisk:node", "Worker_1");
  const std::string b = NodeInitiator("iqn.2024-01.io.vdisk:node", "worker-1");
  EXPECT_NE(a, b);
  EXPECT_TRUE(ValidateIqn(a, "x").ok()) << a;
}

TEST(TgtShow, ParsesTargetsLunsNexusesAccountsAcls) {
  const std::string text = R"(Target 1: iqn.2024-01.io.vdisk:a
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 6
            Initiator: iqn.2024-01.io.vdisk:node.n1 alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
        LUN: 1
            Type: disk
            Size: 67 MB, Block size: 512
            Backing store path: /srv/luns/volumes/a.img
    Account information:
        vdisk-u1
    ACL information:
        iqn.2024-01.io.vdisk:node.n1
        ALL
Target 7: iqn.2024-01.io.vdisk:b
    System information:
    I_T nexus information:
    LUN information:
        LUN: 0
            Backing store path: None
    Account information:
    ACL information:
)";
  auto t = ParseTgtShow(text);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].tid, 1);
  EXPECT_EQ(t[0].iqn, "iqn.2024-01.io.vdisk:a");
  ASSERT_EQ(t[0].luns.size(), 1u);
  EXPECT_EQ(t[0].luns[0], (std::pair<int, std::string>{1, "/srv/luns/volumes/a.img"}));
  EXPECT_EQ(t[0].initiators, std::vector<std::string>{"iqn.2024-01.io.vdisk:node.n1"});
  EXPECT_EQ(t[0].accounts, std::vector<std::string>{"vdisk-u1"});
  EXPECT_EQ(t[0].acl, (std::vector<std::string>{"iqn.2024-01.io.vdisk:node.n1", "ALL"}));
  EXPECT_EQ(t[1].tid, 7);
  EXPECT_TRUE(t[1].luns.empty());
  EXPECT_TRUE(t[1].acl.empty());
}

TEST(Journal, RoundTrip) {
  JournalState s;
  VolumeRecord v;
  v.id = "pvc-1-0123456789ab";
  v.name = "pvc-1";
  v.size_bytes = 1 << 30;
  v.access_modes = {AccessMode::kMultiNodeMultiWriter};
  v.params = {{"preallocation", "full"}};
  v.source = {VolumeSource::Kind::kSnapshot, "s-1"};
  v.state = RecordState::kPending;
  v.created_unix_ns = 42;
  v.published = {"iqn.2024-01.io.vdisk:node.a"};
  v.chap = {"u", "p", "", ""};
  s.volumes[v.id] = v;
  SnapshotRecord sn{"snap-0123456789ab", "snap", v.id, 1 << 30, RecordState::kReady, 7};
  s.snapshots[sn.id] = sn;
  auto back = DecodeJournal(EncodeJournal(s));
  ASSERT_TRUE(back.ok()) << back.status();
  const VolumeRecord& w = back->volumes.at(v.id);
  EXPECT_EQ(w.name, v.name);
  EXPECT_EQ(w.size_bytes, v.size_bytes);
  EXPECT_EQ(w.access_modes, v.access_modes);
  EXPECT_EQ(w.params, v.params);
  EXPECT_EQ(w.source, v.source);
  EXPECT_EQ(w.state, RecordState::kPending);
  EXPECT_EQ(w.published, v.published);
  EXPECT_EQ(w.chap.password, "p");
  EXPECT_EQ(back->snapshots.at(sn.id).source_volume_id, v.id);
  EXPECT_EQ(DecodeJournal("{}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeJournal("not json").status().code(), StatusCode::kInvalidArgument);
}

TEST(ExtendedCopy, ParameterListLayout) {
  const std::string naa_a(16, '\x6a'), naa_b(16, '\x6b');
  std::string p = ExtendedCopyParameters(naa_a, naa_b, 512, 100, 100, 2048);
  ASSERT_EQ(p.size(), 16u + 64u + 28u);
  EXPECT_EQ(static_cast<uint8_t>(p[1]), 0x18);  // no list identifier
  EXPECT_EQ(static_cast<uint8_t>(p[3]), 64);    // CSCD descriptor list length
  EXPECT_EQ(static_cast<uint8_t>(p[11]), 28);   // segment descriptor list length
  EXPECT_EQ(static_cast<uint8_t>(p[16]), 0xE4);
  EXPECT_EQ(static_cast<uint8_t>(p[16 + 32]), 0xE4);
  EXPECT_EQ(static_cast<uint8_t>(p[16 + 30]), 0x02);  // block length 512 (0x000200)
  const size_t seg = 16 + 64;
  EXPECT_EQ(static_cast<uint8_t>(p[seg]), 0x02);
  EXPECT_EQ(static_cast<uint8_t>(p[seg + 3]), 0x18);
  EXPECT_EQ(static_cast<uint8_t>(p[seg + 7]), 1);  // destination CSCD index
  EXPECT_EQ((static_cast<uint8_t>(p[seg + 10]) << 8) | static_cast<uint8_t>(p[seg + 11]), 2048);
  EXPECT_EQ(static_cast<uint8_t>(p[seg + 19]), 100);
  EXPECT_EQ(static_cast<uint8_t>(p[seg + 27]), 100);
}

}  // namespace
}  // namespace vdisk::blockdev::iscsi
