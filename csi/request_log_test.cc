#include "csi/request_log.h"

#include <gtest/gtest.h>

#include "csi/csi.pb.h"

namespace vdisk::csi {
namespace {

TEST(RequestLog, SecretsAndMountFlagsNeverAppear) {
  ::csi::v1::CreateVolumeRequest req;
  req.set_name("pvc-1");
  (*req.mutable_secrets())["userKey"] = "AQD-super-secret==";
  (*req.mutable_parameters())["pool"] = "local";
  (*req.mutable_parameters())["encryptionPassphrase"] = "hunter2";
  auto* cap = req.add_volume_capabilities();
  cap->mutable_mount()->add_mount_flags("password=swordfish");
  std::string text = Redact(req);
  EXPECT_EQ(text.find("super-secret"), std::string::npos) << text;
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_EQ(text.find("swordfish"), std::string::npos) << text;
  EXPECT_NE(text.find("pvc-1"), std::string::npos);
  EXPECT_NE(text.find("local"), std::string::npos);
  EXPECT_NE(text.find("userKey"), std::string::npos);  // the key name is fine to show
  // The original is untouched.
  EXPECT_EQ(req.secrets().at("userKey"), "AQD-super-secret==");
}

TEST(RequestLog, NodeRequests) {
  ::csi::v1::NodePublishVolumeRequest req;
  req.set_volume_id("v1.vol.local.x");
  (*req.mutable_secrets())["token"] = "t0ps3cret";
  std::string text = Redact(req);
  EXPECT_EQ(text.find("t0ps3cret"), std::string::npos);
  EXPECT_NE(text.find("v1.vol.local.x"), std::string::npos);
}

}  // namespace
}  // namespace vdisk::csi
