// Parsing of the QoS mutable parameters: units, bursts, unknown and malformed keys, and the
// mapping to librbd's rbd_qos_* options.
#include "blockdev/qos/qos_limits.h"

#include <gtest/gtest.h>

namespace vdisk::blockdev::qos {
namespace {

TEST(QosLimits, EmptyIsUnlimited) {
  auto l = ParseQosParams({});
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->unlimited());
  EXPECT_EQ(Describe(*l), "unlimited");
}

TEST(QosLimits, ParsesRatesUnitsAndBursts) {
  auto l = ParseQosParams({{"readIopsLimit", "2000"},
                           {"writeBpsLimit", "200Mi"},
                           {"writeBpsBurst", "1G"},
                           {"burstSeconds", "10"},
                           {"csi.storage.k8s.io/pvc/name", "ignored"}});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->read_iops.limit, 2000u);
  EXPECT_EQ(l->write_bps.limit, 200u << 20);
  EXPECT_EQ(l->write_bps.burst, 1000000000u);
  EXPECT_EQ(l->burst_seconds, 10u);
  EXPECT_FALSE(l->unlimited());
  EXPECT_EQ(l->iops.limit, 0u);
}

TEST(QosLimits, ZeroMeansNoLimit) {
  auto l = ParseQosParams({{"iopsLimit", "0"}});
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->unlimited());
}

TEST(QosLimits, RejectsBadInput) {
  for (const Params& p : std::vector<Params>{{{"XXX_FakeKey", "XXX_FakeValue"}},
                                             {{"iopsLimit", "-5"}},
                                             {{"iopsLimit", "10k"}},  // ops take no unit
                                             {{"bpsLimit", "5Qi"}},
                                             {{"bpsLimit", ""}},
                                             {{"iopsBurst", "100"}},  // burst without limit
                                             {{"iopsLimit", "100"}, {"iopsBurst", "50"}},
                                             {{"burstSeconds", "0"}},
                                             {{"bpsLimit", "99999999999999999999"}}}) {
    auto l = ParseQosParams(p);
    EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument) << p.begin()->first << "=" << p.begin()->second;
  }
  auto l = ParseQosParams({{"XXX_FakeKey", "v"}});
  EXPECT_NE(l.status().message().find("XXX_FakeKey"), std::string::npos);
}

TEST(QosLimits, LibrbdSettingsCoverEveryRate) {
  auto l = ParseQosParams({{"iopsLimit", "500"}, {"iopsBurst", "1000"}, {"readBpsLimit", "1Mi"}});
  ASSERT_TRUE(l.ok());
  auto m = LibrbdQosSettings(*l);
  EXPECT_EQ(m.size(), 18u);
  EXPECT_EQ(m.at("rbd_qos_iops_limit"), "500");
  EXPECT_EQ(m.at("rbd_qos_iops_burst"), "1000");
  EXPECT_EQ(m.at("rbd_qos_read_bps_limit"), "1048576");
  EXPECT_EQ(m.at("rbd_qos_write_iops_limit"), "0");
  EXPECT_EQ(m.at("rbd_qos_bps_burst_seconds"), "1");
}

}  // namespace
}  // namespace vdisk::blockdev::qos
