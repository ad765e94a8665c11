#include "backup/store/file_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/fs.h"

namespace vdisk::backup {
namespace {

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("vdisk-file-store-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    store_ = OpenFileStore(root_).value();
    ASSERT_EQ(store_->Check().code(), absl::StatusCode::kNotFound);
    ASSERT_TRUE(store_->CreateRoot().ok());
    ASSERT_TRUE(store_->Check().ok());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(FileStoreTest, PutGetRangeSizeListDelete) {
  ASSERT_TRUE(store_->Put("packs/ab/abc", "0123456789").ok());
  ASSERT_TRUE(store_->Put("packs/cd/cde", "x").ok());
  ASSERT_TRUE(store_->Put("index/i1", "idx").ok());
  EXPECT_EQ(store_->Get("packs/ab/abc").value(), "0123456789");
  EXPECT_EQ(store_->GetRange("packs/ab/abc", 3, 4).value(), "3456");
  EXPECT_EQ(store_->GetRange("packs/ab/abc", 8, 4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->Size("packs/ab/abc").value(), 10u);
  auto list = store_->List("packs/").value();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].key, "packs/ab/abc");
  EXPECT_EQ(list[1].size, 1u);
  EXPECT_EQ(store_->List("nothing/").value().size(), 0u);
  EXPECT_TRUE(store_->Delete("packs/ab/abc").ok());
  EXPECT_TRUE(store_->Delete("packs/ab/abc").ok());
  EXPECT_EQ(store_->Get("packs/ab/abc").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FileStoreTest, KeysCannotEscapeTheRoot) {
  EXPECT_EQ(store_->Put("../evil", "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get("/etc/passwd").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FileStoreTest, WriterIsInvisibleUntilCommitAndAbortLeavesNothing) {
  auto w = store_->Create("packs/aa/p1", 0).value();
  ASSERT_TRUE(w->Append("hello ").ok());
  ASSERT_TRUE(w->Append("world").ok());
  EXPECT_EQ(store_->List("packs/").value().size(), 0u);
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(store_->Get("packs/aa/p1").value(), "hello world");

  {
    auto w2 = store_->Create("packs/aa/p2", 0).value();
    ASSERT_TRUE(w2->Append("partial").ok());
  }  // destroyed without commit
  EXPECT_EQ(store_->List("packs/").value().size(), 1u);
  EXPECT_EQ(std::distance(std::filesystem::recursive_directory_iterator(root_ + "/packs"),
                          std::filesystem::recursive_directory_iterator()),
            2);  // the aa/ directory and p1 only: no temp file left
}

TEST_F(FileStoreTest, StaleTempFilesAreRemoved) {
  auto w = store_->Create("packs/bb/p", 0).value();
  ASSERT_TRUE(w->Append("x").ok());
  EXPECT_EQ(store_->AbortStaleUploads("packs/", std::chrono::hours(1)).value(), 0);
  EXPECT_EQ(store_->AbortStaleUploads("packs/", std::chrono::seconds(0)).value(), 1);
  w->Abort();
}

}  // namespace
}  // namespace vdisk::backup
