#include "common/log.h"

#include <gtest/gtest.h>

namespace vdisk {
namespace {

TEST(Redacted, HidesSecretLookingKeys) {
  auto out = Redacted({{"userID", "admin"}, {"userKey", "AQD..."}, {"csi.storage.k8s.io/secret", "s"},
                       {"password", "p"}, {"pool", "rbd"}, {"accessToken", "t"}});
  EXPECT_EQ(out["userID"], "admin");
  EXPECT_EQ(out["pool"], "rbd");
  EXPECT_EQ(out["userKey"], "***");
  EXPECT_EQ(out["csi.storage.k8s.io/secret"], "***");
  EXPECT_EQ(out["password"], "***");
  EXPECT_EQ(out["accessToken"], "***");
}

}  // namespace
}  // namespace vdisk
