#include "common/mountinfo.h"

#include <gtest/gtest.h>

namespace vdisk {
namespace {

TEST(MountInfo, EscapesAreUndone) {
  EXPECT_EQ(UnescapeMountInfoField("/a\\040b\\011c\\134d"), "/a b\tc\\d");
  EXPECT_EQ(UnescapeMountInfoField("/not\\09escape"), "/not\\09escape");
  EXPECT_EQ(UnescapeMountInfoField("/tail\\04"), "/tail\\04");
}

TEST(MountInfo, TheRootIsMounted) {
  auto mounts = ReadMountInfo();
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  bool root = false;
  for (const auto& m : *mounts) {
    EXPECT_NE(m.devnum.find(':'), std::string::npos) << m.devnum;
    root = root || m.mountpoint == "/";
  }
  EXPECT_TRUE(root);
}

}  // namespace
}  // namespace vdisk
