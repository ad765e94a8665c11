// The local pool's lookups by name (name_index.h) on a real pool in a scratch directory: an
// unreadable record is never mistaken for a free name, the index is rebuilt and checked at
// open, and entries left by an interrupted create or delete mean "free".
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "blockdev/local/layout.h"
#include "blockdev/local/local_pool.h"
#include "blockdev/local/name_index.h"

namespace vdisk::blockdev::local {
namespace {

using ::absl::StatusCode;
namespace stdfs = std::filesystem;

class NameIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("VDISK_BINARY_DIR");
    root_ = std::string(bin ? bin : "/tmp") + "/test-tmp/names-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(root_);
    Reopen();
  }
  void TearDown() override {
    pool_.reset();
    stdfs::remove_all(root_);
  }
  void Reopen() {
    pool_.reset();
    LocalPoolOptions o;
    o.root = root_;
    o.reflink = LocalPoolOptions::Reflink::kOff;
    auto p = OpenLocalPool(o);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = *p;
  }
  StatusOr<Volume> Create(const std::string& name) {
    VolumeRequest req;
    req.name = name;
    req.size_bytes = 1 << 20;
    return pool_->create_volume(req);
  }
  void Corrupt(const std::string& path) { std::ofstream(path, std::ios::trunc) << "{\"format\": 1, \"id\": "; }
  int Files(const std::string& dir) {
    int n = 0;
    for (const auto& e : stdfs::directory_iterator(dir)) n += e.path().extension() == ".json";
    return n;
  }

  std::string root_;
  std::shared_ptr<Pool> pool_;
};

TEST_F(NameIndexTest, AVolumeWithAnUnreadableRecordIsNeverCreatedTwice) {
  auto a = Create("pvc-a");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(Create("pvc-b").ok());
  Layout layout(root_);
  Corrupt(layout.volume_meta(a->id));

  for (int reopened = 0; reopened < 2; ++reopened) {
    SCOPED_TRACE(reopened ? "after reopening the pool" : "same pool object");
    auto found = pool_->find_volume_by_name("pvc-a");
    EXPECT_EQ(found.status().code(), StatusCode::kDataLoss)
        << (found.ok() ? (*found ? "found" : "reported as absent") : found.status().ToString());
    // The CO retrying its CreateVolume must not get a second volume called pvc-a.
    EXPECT_EQ(Create("pvc-a").status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(Files(layout.volume_meta_dir()), 2);
    // Other names are unaffected, and nothing else is read for them.
    auto b = pool_->find_volume_by_name("pvc-b");
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_TRUE(b->has_value());
    Reopen();
  }
  ASSERT_TRUE(Create("pvc-c").ok());
  // The operator removes the broken record: the name is free again.
  stdfs::remove(layout.volume_meta(a->id));
  auto again = Create("pvc-a");
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(NameIndexTest, ASnapshotWithAnUnreadableRecordIsNeverTakenTwice) {
  auto v = Create("pvc-src");
  ASSERT_TRUE(v.ok()) << v.status();
  auto s = pool_->create_snapshot(v->id, "snap-a");
  ASSERT_TRUE(s.ok()) << s.status();
  Layout layout(root_);
  Corrupt(layout.snapshot_meta(s->id));
  EXPECT_EQ(pool_->find_snapshot_by_name("snap-a").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(pool_->create_snapshot(v->id, "snap-a").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(Files(layout.snapshot_meta_dir()), 1);
  EXPECT_TRUE(pool_->create_snapshot(v->id, "snap-b").ok());
}

TEST_F(NameIndexTest, UnreadableRecordsOfUnknownNameStopLookupsByName) {
  // A pool written before the index existed (no entries), with one broken record.
  auto a = Create("pvc-a");
  ASSERT_TRUE(a.ok()) << a.status();
  Layout layout(root_);
  pool_.reset();
  stdfs::remove_all(root_ + "/meta/names");
  Corrupt(layout.volume_meta(a->id));
  Reopen();
  // Its name is unknown: no name can be said to be free.
  EXPECT_EQ(pool_->find_volume_by_name("pvc-anything").status().code(), StatusCode::kDataLoss);
  auto created = Create("pvc-a");
  EXPECT_EQ(created.status().code(), StatusCode::kDataLoss) << created.status();
  EXPECT_EQ(Files(layout.volume_meta_dir()), 1);
  // The operator removes the broken record: names work again, without a restart.
  stdfs::remove(layout.volume_meta(a->id));
  EXPECT_TRUE(Create("pvc-a").ok());
}

TEST_F(NameIndexTest, TheIndexIsRebuiltAtOpen) {
  auto a = Create("pvc-a");
  ASSERT_TRUE(a.ok()) << a.status();
  auto s = pool_->create_snapshot(a->id, "snap-a");
  ASSERT_TRUE(s.ok()) << s.status();
  pool_.reset();
  stdfs::remove_all(root_ + "/meta/names");
  Reopen();
  auto found = pool_->find_volume_by_name("pvc-a");
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status();
  EXPECT_EQ((*found)->id, a->id);
  auto snap = pool_->find_snapshot_by_name("snap-a");
  ASSERT_TRUE(snap.ok() && snap->has_value()) << snap.status();
  EXPECT_EQ(Create("pvc-a").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Files(root_ + "/meta/names/volumes"), 1);
  EXPECT_EQ(Files(root_ + "/meta/names/snapshots"), 1);
}

TEST_F(NameIndexTest, EntriesWithoutTheirRecordMeanFreeAndAreSwept) {
  // A create killed between its index entry and its record; a delete killed between its record
  // and its entry: both leave an entry whose record does not exist.
  NameIndex index(Layout(root_).volume_names_dir());
  ASSERT_TRUE(index.Put("pvc-crashed", "pvc-crashed-00000000abcd").ok());
  auto found = pool_->find_volume_by_name("pvc-crashed");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  Reopen();
  EXPECT_EQ(Files(root_ + "/meta/names/volumes"), 0) << "the stale entry was not swept";
  ASSERT_TRUE(index.Put("pvc-crashed", "pvc-crashed-00000000abcd").ok());
  auto v = Create("pvc-crashed");
  ASSERT_TRUE(v.ok()) << v.status();
  auto entry = index.Lookup("pvc-crashed");
  ASSERT_TRUE(entry.ok() && entry->has_value());
  EXPECT_EQ(**entry, v->id);
  // Deleting frees the name.
  ASSERT_TRUE(pool_->delete_volume(v->id).ok());
  EXPECT_EQ(Files(root_ + "/meta/names/volumes"), 0);
  EXPECT_TRUE(Create("pvc-crashed").ok());
}

}  // namespace
}  // namespace vdisk::blockdev::local
