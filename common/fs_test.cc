#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace vdisk::fs {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-fs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FsTest, WriteFileAtomicReplacesContentAndLeavesNoTempFiles) {
  std::string path = dir_ + "/meta.json";
  ASSERT_TRUE(WriteFileAtomic(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two").ok());
  auto got = ReadFile(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "two");
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(FsTest, ReadMissingFileIsNotFound) {
  EXPECT_EQ(ReadFile(dir_ + "/nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FsTest, WriteIntoMissingDirectoryFailsCleanly) {
  EXPECT_EQ(WriteFileAtomic(dir_ + "/no/such/dir/x", "y").code(), absl::StatusCode::kNotFound);
}

TEST(JoinUnder, RefusesEscapes) {
  EXPECT_EQ(*JoinUnder("/root/", "a/b"), "/root/a/b");
  for (const char* bad : {"", "/etc/passwd", "..", "../x", "a/../../x", "a//b", "./a"}) {
    EXPECT_EQ(JoinUnder("/root", bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(JoinUnder("/root", std::string("a\0b", 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IsUnder, LexicalContainment) {
  EXPECT_TRUE(IsUnder("/var/lib/kubelet", "/var/lib/kubelet/pods/x"));
  EXPECT_TRUE(IsUnder("/var/lib/kubelet/", "/var/lib/kubelet"));
  EXPECT_FALSE(IsUnder("/var/lib/kubelet", "/var/lib/kubelet2/x"));
  EXPECT_FALSE(IsUnder("/var/lib/kubelet", "/var/lib/kubelet/../../etc"));
  EXPECT_TRUE(IsUnder("/", "/anything"));
}

TEST(ErrnoStatus, MapsCodesAndKeepsContext) {
  Status s = ErrnoStatus(ENOSPC, "write disk.img");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("write disk.img"), absl::string_view::npos);
  EXPECT_NE(s.message().find("errno 28"), absl::string_view::npos);
  EXPECT_EQ(ErrnoStatus(ENOENT, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EEXIST, "x").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(ErrnoStatus(0, "x").ok());
  EXPECT_EQ(Annotate(s, "volume v1").message().substr(0, 11), "volume v1: ");
}

}  // namespace
}  // namespace vdisk::fs
