// ConfinedRoot on real directories and symlinks, with both resolvers (openat2, and the
// O_NOFOLLOW walk older kernels get): nothing below the root resolves through a symlink, so
// nothing is created, opened or removed outside it.
#include "common/confined_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vdisk::fs {
namespace {

namespace stdfs = std::filesystem;
using ::absl::StatusCode;

class ConfinedRootTest : public ::testing::TestWithParam<ConfinedRoot::Resolver> {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("VDISK_BINARY_DIR");
    base_ = std::string(bin ? bin : "/tmp") + "/test-tmp/confined-" + std::to_string(::getpid()) + "-" +
            std::to_string(GetParam() == ConfinedRoot::Resolver::kWalk);
    stdfs::remove_all(base_);
    root_ = base_ + "/kubelet";
    outside_ = base_ + "/outside";
    stdfs::create_directories(root_ + "/pods/a");
    stdfs::create_directories(outside_);
    std::ofstream(outside_ + "/secret") << "not yours";
    auto r = ConfinedRoot::Open(root_, GetParam());
    ASSERT_TRUE(r.ok()) << r.status();
    root_obj_ = std::make_unique<ConfinedRoot>(std::move(*r));
  }
  void TearDown() override { stdfs::remove_all(base_); }
  const ConfinedRoot& root() { return *root_obj_; }

  std::string base_, root_, outside_;
  std::unique_ptr<ConfinedRoot> root_obj_;
};

TEST_P(ConfinedRootTest, ResolvesPlainPathsAndRefusesEverythingElse) {
  EXPECT_TRUE(root().Resolve(root_ + "/pods/a").ok());
  EXPECT_TRUE(root().Resolve(root_).ok());
  EXPECT_TRUE(root().Resolve(root_ + "//pods/a/").ok());
  EXPECT_EQ(root().Resolve(root_ + "/pods/missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(root().Resolve(outside_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().Resolve(root_ + "/pods/../../outside").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().Resolve("pods/a").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().Resolve(root_ + "x/pods").status().code(), StatusCode::kInvalidArgument);
  std::ofstream(root_ + "/pods/file");
  EXPECT_EQ(root().Resolve(root_ + "/pods/file/x").status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(ConfinedRootTest, NeverResolvesThroughASymlink) {
  stdfs::create_directory_symlink(outside_, root_ + "/pods/evil");           // a directory on the way
  stdfs::create_symlink(outside_ + "/secret", root_ + "/pods/a/link");      // the last component
  stdfs::create_directory_symlink(root_ + "/pods/a", root_ + "/pods/inside");  // even one staying inside
  EXPECT_EQ(root().Resolve(root_ + "/pods/evil/secret").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().Resolve(root_ + "/pods/evil").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().Resolve(root_ + "/pods/a/link").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().Resolve(root_ + "/pods/inside").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().ResolveParent(root_ + "/pods/evil/x").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(ConfinedRootTest, CreatesNothingOutsideTheRoot) {
  stdfs::create_directory_symlink(outside_, root_ + "/pods/evil");
  stdfs::create_symlink(outside_ + "/created", root_ + "/pods/a/dangling");
  EXPECT_EQ(root().MakeDirs(root_ + "/pods/evil/vol", 0750).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().CreateFile(root_ + "/pods/evil/vol", 0640).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().CreateFile(root_ + "/pods/a/dangling", 0640).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().MakeDirs(root_ + "/pods/a/dangling", 0750).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().MakeDir(root_ + "/pods/evil/vol", 0750).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root().MakeDir(root_ + "/pods/a/dangling", 0750).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(stdfs::exists(outside_ + "/vol"));
  EXPECT_FALSE(stdfs::exists(outside_ + "/created"));
  // MakeDir makes only the last component.
  EXPECT_EQ(root().MakeDir(root_ + "/pods/gone/vol", 0750).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(stdfs::exists(root_ + "/pods/gone"));
  EXPECT_TRUE(root().MakeDir(root_ + "/pods/a/vol", 0750).ok());
  EXPECT_TRUE(root().MakeDir(root_ + "/pods/a/vol", 0750).ok());
  // What is plainly beneath the root works, and is idempotent.
  auto d = root().MakeDirs(root_ + "/pods/b/volumes/x/mount", 0750);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(root().MakeDirs(root_ + "/pods/b/volumes/x/mount", 0750).ok());
  auto f = root().CreateFile(root_ + "/pods/c/dev", 0640);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(stdfs::is_regular_file(root_ + "/pods/c/dev"));
  EXPECT_TRUE(root().CreateFile(root_ + "/pods/c/dev", 0640).ok());
  EXPECT_EQ(root().CreateFile(root_ + "/pods/b", 0640).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(root().MakeDirs(root_ + "/pods/c/dev", 0750).status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(ConfinedRootTest, RemovesTheLinkNeverWhatItPointsTo) {
  stdfs::create_symlink(outside_ + "/secret", root_ + "/pods/a/link");
  stdfs::create_directory_symlink(outside_, root_ + "/pods/evil");
  EXPECT_TRUE(root().Remove(root_ + "/pods/a/link").ok());
  EXPECT_FALSE(stdfs::is_symlink(root_ + "/pods/a/link"));
  EXPECT_EQ(root().Remove(root_ + "/pods/evil/secret").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(stdfs::exists(outside_ + "/secret"));
  EXPECT_TRUE(root().Remove(root_ + "/pods/a/missing").ok());
  EXPECT_EQ(root().Remove(root_ + "/pods").code(), StatusCode::kFailedPrecondition);  // not empty
}

TEST_P(ConfinedRootTest, TheRootItselfMayBeASymlink) {
  stdfs::create_directory_symlink(root_, base_ + "/kubelet-link");
  auto r = ConfinedRoot::Open(base_ + "/kubelet-link", GetParam());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->Resolve(base_ + "/kubelet-link/pods/a").ok());
  EXPECT_EQ(r->Resolve(root_ + "/pods/a").status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, ConfinedRootTest,
                         ::testing::Values(ConfinedRoot::Resolver::kAuto, ConfinedRoot::Resolver::kWalk),
                         [](const auto& info) {
                           return info.param == ConfinedRoot::Resolver::kAuto ? "Openat2" : "NoFollowWalk";
                         });

}  // namespace
}  // namespace vdisk::fs
