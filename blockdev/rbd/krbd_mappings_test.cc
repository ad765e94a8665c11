#include "blockdev/rbd/krbd_mappings.h"

#include <gtest/gtest.h>

#include <set>

namespace vdisk::blockdev::rbd {
namespace {

// As printed by `rbd device list --format json` (Ceph 16): the staged read-write mapping of the
// image, a mapping of one of its snapshots, and another image.
constexpr char kList[] = R"([
  {"id":"0","pool":"rbd","namespace":"","name":"vdisk-img-1","snap":"-","device":"/dev/rbd0"},
  {"id":"1","pool":"rbd","namespace":"","name":"vdisk-img-1","snap":"snap-a","device":"/dev/rbd1"},
  {"id":"2","pool":"rbd","namespace":"","name":"vdisk-img-2","snap":"-","device":"/dev/rbd2"}
])";

TEST(KrbdMappings, AReadOnlyAttachNeverReusesTheReadWriteMapping) {
  std::set<std::string> ro_devices;  // none read-only yet
  auto is_ro = [&](const std::string& d) { return ro_devices.contains(d); };
  EXPECT_EQ(FindReusableMapping(kList, "rbd", "vdisk-img-1", false, is_ro), "/dev/rbd0");
  EXPECT_EQ(FindReusableMapping(kList, "rbd", "vdisk-img-1", true, is_ro), "")
      << "the staged read-write device must not be handed to a read-only publish";
  EXPECT_EQ(FindReusableMapping(kList, "rbd", "vdisk-img-3", false, is_ro), "");
  EXPECT_EQ(FindReusableMapping(kList, "other", "vdisk-img-1", false, is_ro), "");

  const std::string with_ro = std::string(kList).insert(std::string(kList).size() - 1,
      R"(,{"id":"3","pool":"rbd","namespace":"","name":"vdisk-img-1","snap":"-","device":"/dev/rbd3"})");
  ro_devices.insert("/dev/rbd3");
  EXPECT_EQ(FindReusableMapping(with_ro, "rbd", "vdisk-img-1", true, is_ro), "/dev/rbd3");
  EXPECT_EQ(FindReusableMapping(with_ro, "rbd", "vdisk-img-1", false, is_ro), "/dev/rbd0");
}

TEST(KrbdMappings, UnreadableListsFindNothing) {
  auto never = [](const std::string&) { return false; };
  EXPECT_EQ(FindReusableMapping("", "rbd", "x", false, never), "");
  EXPECT_EQ(FindReusableMapping("{\"not\":\"a list\"}", "rbd", "x", false, never), "");
  EXPECT_EQ(FindReusableMapping("[1, \"x\", null]", "rbd", "x", false, never), "");
  EXPECT_FALSE(KernelDeviceReadOnly("/dev/no-such-device"));
}

}  // namespace
}  // namespace vdisk::blockdev::rbd
