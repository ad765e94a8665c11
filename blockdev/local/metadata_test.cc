#include "blockdev/local/metadata.h"

#include <gtest/gtest.h>

#include "blockdev/local/layout.h"

namespace vdisk::blockdev::local {
namespace {

TEST(LocalIds, ValidateId) {
  EXPECT_TRUE(ValidateId("pvc-1234_abc.d-0123456789ab").ok());
  for (const char* bad : {"", ".", "..", "a/b", "../x", "/etc", "a b", "a\nb", "ä"})
    EXPECT_EQ(ValidateId(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_EQ(ValidateId(std::string(65, 'a')).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateId(std::string("a\0b", 3)).code(), absl::StatusCode::kInvalidArgument);
}

TEST(LocalIds, NewIdIsSafeAndUnique) {
  for (const std::string& name : std::vector<std::string>{"pvc-0a1b", "../../etc/passwd", "", "名前", std::string(300, 'x'),
                                 std::string(".."), std::string("a/b/c")}) {
    std::string id = NewId(name);
    EXPECT_TRUE(ValidateId(id).ok()) << id;
    EXPECT_NE(NewId(name), id);
  }
  EXPECT_TRUE(NewId("pvc-0a1b").starts_with("pvc-0a1b-"));
}

TEST(LocalIds, ValidateName) {
  EXPECT_TRUE(ValidateName("pvc/with/slashes and spaces ✓").ok());
  EXPECT_EQ(ValidateName("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName("a\nb").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName(std::string(2000, 'n')).code(), absl::StatusCode::kInvalidArgument);
}

TEST(LocalMetadata, VolumeRoundTrip) {
  Volume v;
  v.id = "pvc-1-0123456789ab";
  v.name = "pvc-1 \"quoted\" / ✓";
  v.size_bytes = 10ULL << 30;
  v.mode = VolumeMode::kFilesystem;
  v.access_modes = {AccessMode::kMultiNodeMultiWriter, AccessMode::kSingleNodeSingleWriter};
  v.params = {{"preallocation", "full"}, {"csi.storage.k8s.io/pvc/name", "x"}};
  v.source = {VolumeSource::Kind::kSnapshot, "snap-0123456789ab"};
  v.pending = true;
  v.created_unix_ns = 1700000000123456789;
  v.context = {{"k", "v"}};
  auto back = DecodeVolume(EncodeVolume(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, v.id);
  EXPECT_EQ(back->name, v.name);
  EXPECT_EQ(back->size_bytes, v.size_bytes);
  EXPECT_EQ(back->mode, v.mode);
  EXPECT_EQ(back->access_modes, v.access_modes);
  EXPECT_EQ(back->params, v.params);
  EXPECT_EQ(back->source, v.source);
  EXPECT_EQ(back->pending, v.pending);
  EXPECT_EQ(back->created_unix_ns, v.created_unix_ns);
  EXPECT_EQ(back->context, v.context);
}

TEST(LocalMetadata, SnapshotRoundTrip) {
  Snapshot s;
  s.id = "snap-0123456789ab";
  s.name = "snapshot-7";
  s.source_volume_id = "pvc-1-0123456789ab";
  s.size_bytes = 1 << 20;
  s.created_unix_ns = 42;
  s.ready = true;
  auto back = DecodeSnapshot(EncodeSnapshot(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, s.id);
  EXPECT_EQ(back->name, s.name);
  EXPECT_EQ(back->source_volume_id, s.source_volume_id);
  EXPECT_EQ(back->size_bytes, s.size_bytes);
  EXPECT_EQ(back->created_unix_ns, s.created_unix_ns);
}

TEST(LocalMetadata, RejectsMalformedRecords) {
  for (const char* bad : {
           "", "[]", "{", "{\"format\":2}", "{\"format\":1}",
           R"({"format":1,"id":"../x","name":"n","size_bytes":1,"mode":"block","created_unix_ns":1})",
           R"({"format":1,"id":"a","name":"n","size_bytes":-1,"mode":"block","created_unix_ns":1})",
           R"({"format":1,"id":"a","name":"n","size_bytes":1,"mode":"tape","created_unix_ns":1})",
           R"({"format":1,"id":"a","name":"n","size_bytes":1,"mode":"block","created_unix_ns":1,"access_modes":["RW"]})",
           R"({"format":1,"id":"a","name":"n","size_bytes":1,"mode":"block","created_unix_ns":1,"source":{"kind":"tape"}})",
           R"({"format":1,"id":"a","name":7,"size_bytes":1,"mode":"block","created_unix_ns":1})",
       }) {
    EXPECT_EQ(DecodeVolume(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(DecodeVolume(
                  R"({"format":1,"id":"a","name":"n","size_bytes":1,"mode":"block","created_unix_ns":1})")
                  .ok());
}

}  // namespace
}  // namespace vdisk::blockdev::local
