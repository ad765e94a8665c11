// RBD-pool behaviour beyond the conformance suite, on the real cluster: bad input (unknown
// pool, bad credentials, wrong cluster), CSI secrets, restarts, in-use refusal, clone-depth
// limits (background and synchronous flatten), snapshot deletion with live children, hidden
// deleted volumes, change maps against known writes, a creator killed mid-create.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/cluster.h"
#include "blockdev/rbd/journal.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "blockdev/sync_io.h"
#include "tests/pool/pool_test_util.h"
#include "tests/rbd/rbd_fixture.h"

extern char** environ;

namespace vdisk::pooltest {
namespace {

namespace rbdb = vdisk::blockdev::rbd;
using blockdev::Snapshot;
using blockdev::Volume;
using blockdev::VolumeRequest;
using blockdev::VolumeSource;
using ::absl::StatusCode;

constexpr uint64_t kMiB = 1 << 20;

#define ASSERT_OK(expr)                          \
  do {                                           \
    auto _s = (expr);                            \
    ASSERT_TRUE(_s.ok()) << _s;                  \
  } while (0)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                        \
  auto VDISK_CONCAT(_r_, __LINE__) = (expr);                   \
  ASSERT_TRUE(VDISK_CONCAT(_r_, __LINE__).ok()) << VDISK_CONCAT(_r_, __LINE__).status(); \
  lhs = std::move(*VDISK_CONCAT(_r_, __LINE__))

// Looks at the cluster directly (as an operator would with `rbd info` / `rbd snap ls --all`).
class Inspector {
 public:
  static StatusOr<Inspector> Connect(const vdisk::testing::CephEnv& env) {
    rbdb::ClusterOptions o;
    o.conf = env.conf;
    o.user = env.driver_user;
    o.keyring = env.driver_keyring;
    Inspector in;
    ASSIGN_OR_RETURN(in.cluster_, rbdb::Cluster::Connect(o));
    ASSIGN_OR_RETURN(in.io_, rbdb::IoCtx::Open(in.cluster_, env.rbd_pool));
    return in;
  }
  bool Exists(const std::string& image) {
    auto img = rbdb::Image::OpenByName(io_, image, "", true);
    return img.ok();
  }
  // Ancestors of the image's head.
  int Depth(const std::string& image) {
    auto img = rbdb::Image::OpenByName(io_, image, "", true);
    if (!img.ok()) return -1;
    rbd_linked_image_spec_t spec;
    rbd_snap_spec_t snap;
    int depth = 0;
    rbd_image_t cur = img->release();
    while (rbd_get_parent(cur, &spec, &snap) == 0) {
      ++depth;
      rbd_image_t next;
      int r = rbd_open_by_id_read_only(io_.get(), spec.image_id, &next, nullptr);
      if (r == 0) r = rbd_snap_set_by_id(next, snap.id);
      rbd_linked_image_spec_cleanup(&spec);
      rbd_snap_spec_cleanup(&snap);
      rbd_close(cur);
      if (r < 0) return -1;
      cur = next;
    }
    rbd_close(cur);
    return depth;
  }
  // (user snapshots, snapshots in the trash namespace) of an image.
  std::pair<int, int> Snaps(const std::string& image) {
    auto img = rbdb::Image::OpenByName(io_, image, "", true);
    if (!img.ok()) return {-1, -1};
    int max = 64;
    std::vector<rbd_snap_info_t> snaps(max);
    int n = rbd_snap_list(img->get(), snaps.data(), &max);
    int user = 0, trash = 0;
    for (int i = 0; i < n; ++i) {
      rbd_snap_namespace_type_t t;
      rbd_snap_get_namespace_type(img->get(), snaps[i].id, &t);
      (t == RBD_SNAP_NAMESPACE_TYPE_TRASH ? trash : user)++;
    }
    if (n > 0) rbd_snap_list_end(snaps.data());
    return {user, trash};
  }
  // Opens the image read-write (a watcher on its header, as a client that was killed leaves
  // until the OSDs time its watch out).
  StatusOr<rbdb::Image> Hold(const std::string& image) {
    return rbdb::Image::OpenByName(io_, image, "", false);
  }
  // The volume and snapshot records in the journal of pool instance `instance`, by key.
  std::vector<std::string> Records(const std::string& instance) {
    rbdb::Journal journal(&io_, "vdisk.journal." + instance);
    std::vector<std::string> keys;
    for (const char* prefix : {"v/", "s/", "vn/", "sn/"}) {
      auto all = journal.List(prefix);
      if (!all.ok()) return {"<" + all.status().ToString() + ">"};
      for (const auto& [k, v] : *all) keys.push_back(k);
    }
    return keys;
  }
  // What a controller killed inside DeleteVolume leaves once librbd removed the image: the
  // record committed as deleted (its name freed) and no image, the parent not collected yet.
  Status KilledAfterImageRemoval(const std::string& instance, const std::string& volume_id) {
    rbdb::Journal journal(&io_, "vdisk.journal." + instance);
    ASSIGN_OR_RETURN(auto raw, journal.Get(rbdb::VolumeKey(volume_id)));
    if (!raw) return absl::NotFoundError(volume_id);
    ASSIGN_OR_RETURN(rbdb::VolumeRecord rec, rbdb::VolumeRecordFromJson(*raw));
    rec.state = rbdb::RecordState::kDeleted;
    {
      ASSIGN_OR_RETURN(rbdb::Journal::Lock held, journal.Acquire());
      RETURN_IF_ERROR(journal.Update({{rbdb::VolumeKey(volume_id), rbdb::ToJson(rec)}},
                                     {rbdb::VolumeNameKey(rec.name)}));
    }
    if (int r = rbd_remove(io_.get(), rec.image.c_str()); r < 0)
      return rbdb::RadosError(r, "rbd_remove " + rec.image);
    return Status();
  }
  // What a controller killed inside CreateVolume from volume `src` leaves between rbd_clone3 and
  // tagging the child: a "creating" record with its hidden snapshot, the snapshot, and the child
  // image, which carries `src`'s vdisk.id (librbd copies image metadata into clones). Returns
  // the child's image name.
  StatusOr<std::string> KilledBetweenCloneAndTag(const std::string& instance, const Volume& src,
                                                 const std::string& name) {
    rbdb::Journal journal(&io_, "vdisk.journal." + instance);
    ASSIGN_OR_RETURN(auto raw, journal.Get(rbdb::VolumeKey(src.id)));
    if (!raw) return absl::NotFoundError(src.id);
    ASSIGN_OR_RETURN(rbdb::VolumeRecord s, rbdb::VolumeRecordFromJson(*raw));
    rbdb::VolumeRecord rec;
    rec.name = name;
    rec.rbd_pool = s.rbd_pool;
    rec.image = rbdb::NewImageName();
    rec.id = rbdb::MakeVolumeId(rec.rbd_pool, rec.image);
    rec.size_bytes = src.size_bytes;
    rec.source = {VolumeSource::Kind::kVolume, src.id};
    rec.owner = "a-killed-controller";  // holds no owner lease: provably gone
    rec.created_unix_ns = rec.updated_unix_ns = rbdb::NowUnixNs();
    rec.clone_snap = rbdb::NewCloneSnapName();
    rec.clone_src_pool = s.rbd_pool;
    rec.clone_src_image_id = s.image_id;
    {
      ASSIGN_OR_RETURN(rbdb::Journal::Lock held, journal.Acquire());
      RETURN_IF_ERROR(journal.Update({{rbdb::VolumeKey(rec.id), rbdb::ToJson(rec)},
                                      {rbdb::VolumeNameKey(rec.name), rec.id}}));
    }
    {
      ASSIGN_OR_RETURN(rbdb::Image simg, rbdb::Image::OpenById(io_, s.image_id, "", false));
      if (int r = rbd_snap_create(simg.get(), rec.clone_snap.c_str()); r < 0)
        return rbdb::RadosError(r, "rbd_snap_create");
    }
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_CLONE_FORMAT, 2);
    int r = rbd_clone3(io_.get(), s.image.c_str(), rec.clone_snap.c_str(), io_.get(),
                       rec.image.c_str(), opts);
    rbd_image_options_destroy(opts);
    if (r < 0) return rbdb::RadosError(r, "rbd_clone3");
    return rec.image;
  }
  // The image's vdisk.id tag ("" if none).
  std::string Tag(const std::string& image) {
    auto img = rbdb::Image::OpenByName(io_, image, "", true);
    if (!img.ok()) return "";
    char v[256] = {};
    size_t len = sizeof v;
    return rbd_metadata_get(img->get(), "vdisk.id", v, &len) >= 0 ? std::string(v) : "";
  }
  int ImagesNamed(const std::string& csi_name) {
    size_t max = 1024;
    std::vector<rbd_image_spec_t> images(max);
    int r = rbd_list2(io_.get(), images.data(), &max);
    if (r < 0) return -1;
    int n = 0;
    for (size_t i = 0; i < max; ++i) {
      rbd_image_t img;
      if (rbd_open_read_only(io_.get(), images[i].name, &img, nullptr) == 0) {
        char v[1100];
        size_t len = sizeof v;
        if (rbd_metadata_get(img, "vdisk.name", v, &len) >= 0 && csi_name == v) ++n;
        rbd_close(img);
      }
    }
    rbd_image_spec_list_cleanup(images.data(), max);
    return n;
  }

 private:
  std::shared_ptr<rbdb::Cluster> cluster_;
  rbdb::IoCtx io_;
};

class RbdPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void Start(blockdev::Params extra) {
    fixture_ = std::make_unique<RbdPoolFixture>(std::move(extra));
    ASSERT_OK(fixture_->SetUp());
    Reopen();
    auto in = Inspector::Connect(fixture_->env());
    ASSERT_TRUE(in.ok()) << in.status();
    inspector_.emplace(std::move(*in));
  }
  void TearDown() override {
    pool_.reset();
    if (fixture_) fixture_->TearDown();
  }
  void Reopen() {
    pool_.reset();
    auto p = fixture_->Open();
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = *p;
  }
  rbdb::RbdPool& impl() { return dynamic_cast<rbdb::RbdPool&>(*pool_); }
  Volume Make(const std::string& name, uint64_t size, blockdev::Params params = {}) {
    VolumeRequest req;
    req.name = name;
    req.size_bytes = size;
    req.params = std::move(params);
    auto v = pool_->create_volume(req);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : Volume{};
  }
  // A volume whose whole size holds WritePattern(seed).
  Volume MakeWritten(const std::string& name, uint64_t size, blockdev::Params params, int seed) {
    Volume v = Make(name, size, std::move(params));
    auto dev = pool_->open_volume(v.id, false);
    EXPECT_TRUE(dev.ok()) << dev.status();
    if (dev.ok()) {
      EXPECT_TRUE(WritePattern(**dev, 0, size, seed).ok());
    }
    return v;
  }
  StatusOr<Volume> CloneOf(const std::string& name, VolumeSource::Kind kind, const std::string& id,
                           uint64_t size, blockdev::Params params = {}) {
    VolumeRequest req;
    req.name = name;
    req.size_bytes = size;
    req.source = {kind, id};
    req.params = std::move(params);
    return pool_->create_volume(req);
  }
  static std::string Image(const Volume& v) { return v.context.at("rbdImage"); }

  std::unique_ptr<RbdPoolFixture> fixture_;
  std::shared_ptr<blockdev::Pool> pool_;
  std::optional<Inspector> inspector_;
};

TEST_F(RbdPoolTest, UnknownRadosPoolIsInvalidArgument) {
  VolumeRequest req;
  req.name = "pvc-nopool";
  req.size_bytes = 4 * kMiB;
  req.params = {{"rbdPool", "no-such-rados-pool"}};
  EXPECT_EQ(pool_->create_volume(req).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->validate_params(req.params).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->capacity(req.params).status().code(), StatusCode::kInvalidArgument);
  req.params = {{"imageFeatures", "layering,fast-diff"}};
  EXPECT_EQ(pool_->create_volume(req).status().code(), StatusCode::kInvalidArgument);
  auto cfg = fixture_->config();
  cfg.options["rbd_pool"] = "no-such-rados-pool";
  EXPECT_EQ(vdisk::testing::OpenPool(cfg).status().code(), StatusCode::kInvalidArgument);
  auto none = pool_->list_volumes();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(RbdPoolTest, OneRadosClientPerClusterAndUser) {
  const auto& env = fixture_->env();
  rbdb::ClusterOptions o;
  o.conf = env.conf;
  o.user = env.driver_user;
  o.keyring = env.driver_keyring;
  ASSERT_OK_AND_ASSIGN(auto a, rbdb::Cluster::Connect(o));
  ASSERT_OK_AND_ASSIGN(auto b, rbdb::Cluster::Connect(o));
  EXPECT_EQ(a->handle(), b->handle()) << "the live connection is shared";
  rbdb::ClusterOptions other = o;
  other.config["rbd_cache"] = "false";
  ASSERT_OK_AND_ASSIGN(auto c, rbdb::Cluster::Connect(other));
  EXPECT_NE(c->handle(), a->handle()) << "different options, different client";
  rbdb::ClusterOptions wrong = o;
  wrong.key = "AQBzZXQgYSB3cm9uZyBrZXkgaGVyZQ==";
  wrong.keyring.clear();
  wrong.connect_timeout_s = 3;
  EXPECT_FALSE(rbdb::Cluster::Connect(wrong).ok()) << "a failed connect is not shared";
  // Once every owner has let go, the next Connect gets a working client (new or still shared).
  a.reset();
  b.reset();
  ASSERT_OK_AND_ASSIGN(auto d, rbdb::Cluster::Connect(o));
  EXPECT_TRUE(rbdb::IoCtx::Open(d, env.rbd_pool).ok());
}

TEST_F(RbdPoolTest, CredentialsFromCsiSecretsAndBadCredentials) {
  const auto& env = fixture_->env();
  auto cfg = fixture_->config();
  cfg.options.erase("keyring");
  cfg.options.erase("user");
  // Without them the pool has no identity: refused, not run as the identity ceph.conf's [client]
  // section names (the test cluster's names client.admin, which would have worked).
  auto anonymous = vdisk::testing::OpenPool(cfg, {});
  EXPECT_EQ(anonymous.status().code(), StatusCode::kUnauthenticated) << anonymous.status();
  // Half an identity (a user whose key ceph.conf would supply) is a configuration error.
  auto half = cfg;
  half.options["user"] = env.driver_user;
  EXPECT_EQ(vdisk::testing::OpenPool(half, {}).status().code(), StatusCode::kInvalidArgument);
  // The CSI secrets alone are enough.
  auto good = vdisk::testing::OpenPool(
      cfg, {{"userID", env.driver_user}, {"userKey", env.driver_key}});
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_TRUE((*good)->list_volumes().ok());
  // A wrong key, an unknown user: PERMISSION_DENIED, and the key is never echoed.
  std::string wrong = env.driver_key;
  // The secret is at the end of the base64 key (the start is a header).
  size_t at = wrong.size() - 6;
  wrong[at] = wrong[at] == 'A' ? 'B' : 'A';
  auto bad = vdisk::testing::OpenPool(cfg, {{"userID", env.driver_user}, {"userKey", wrong}});
  EXPECT_EQ(bad.status().code(), StatusCode::kPermissionDenied) << bad.status();
  EXPECT_EQ(std::string(bad.status().message()).find(wrong), std::string::npos);
  auto nouser = vdisk::testing::OpenPool(cfg, {{"userID", "nobody"}, {"userKey", env.driver_key}});
  EXPECT_EQ(nouser.status().code(), StatusCode::kPermissionDenied) << nouser.status();
  auto garbage = vdisk::testing::OpenPool(cfg, {{"userID", env.driver_user}, {"userKey", "x"}});
  EXPECT_FALSE(garbage.ok());
  EXPECT_EQ(std::string(garbage.status().message()).find("userKey=x"), std::string::npos);
}

TEST_F(RbdPoolTest, WrongClusterIsUnavailableQuickly) {
  blockdev::PoolConfig cfg{"elsewhere", "rbd",
                           {{"mon_host", "127.0.0.1:1"},  // nothing listens there
                            {"user", fixture_->env().driver_user},
                            {"keyring", fixture_->env().driver_keyring},
                            {"connect_timeout", "2"}}};
  auto start = std::chrono::steady_clock::now();
  auto p = vdisk::testing::OpenPool(cfg);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(p.status().code(), StatusCode::kUnavailable) << p.status();
  EXPECT_LT(took, std::chrono::seconds(15));
  // A conf file that does not exist.
  blockdev::PoolConfig nocfg{"nocfg", "rbd",
                             {{"conf", "/nonexistent/ceph.conf"},
                              {"user", fixture_->env().driver_user},
                              {"keyring", fixture_->env().driver_keyring}}};
  EXPECT_EQ(vdisk::testing::OpenPool(nocfg).status().code(), StatusCode::kNotFound);
}

TEST_F(RbdPoolTest, RepeatsAndRestartsBetweenCalls) {
  Volume v = Make("pvc-restart", 8 * kMiB);
  Reopen();
  ASSERT_OK_AND_ASSIGN(auto found, pool_->find_volume_by_name("pvc-restart"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, v.id);
  ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-restart"));
  Reopen();
  ASSERT_OK_AND_ASSIGN(auto fs, pool_->find_snapshot_by_name("snap-restart"));
  ASSERT_TRUE(fs.has_value());
  EXPECT_EQ(fs->id, s.id);
  EXPECT_TRUE(fs->ready);
  ASSERT_OK(pool_->delete_snapshot(s.id));
  Reopen();
  ASSERT_OK(pool_->delete_snapshot(s.id));
  ASSERT_OK(pool_->delete_volume(v.id));
  Reopen();
  ASSERT_OK(pool_->delete_volume(v.id));
  EXPECT_EQ(pool_->get_volume(v.id).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(inspector_->Exists(Image(v)));
  // The same CSI name in another journal namespace is another volume.
  auto other = std::make_unique<RbdPoolFixture>();
  ASSERT_OK(other->SetUp());
  ASSERT_OK_AND_ASSIGN(auto other_pool, other->Open());
  Volume a = Make("pvc-shared-name", 4 * kMiB);
  VolumeRequest req;
  req.name = "pvc-shared-name";
  req.size_bytes = 4 * kMiB;
  ASSERT_OK_AND_ASSIGN(Volume b, other_pool->create_volume(req));
  EXPECT_NE(a.id, b.id);
  other_pool.reset();
  other->TearDown();
}

TEST_F(RbdPoolTest, VolumeInUseIsNotDeletedAndAttachNeedsKernelRbd) {
  Volume v = Make("pvc-busy", 4 * kMiB);
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    auto s = pool_->delete_volume(v.id);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
    ASSERT_OK(pool_->get_volume(v.id).status());
  }
  auto a = pool_->attach(v.id, false, {});
  if (::access("/sys/bus/rbd", F_OK) != 0) {
    EXPECT_EQ(a.status().code(), StatusCode::kFailedPrecondition) << a.status();
    EXPECT_NE(std::string(a.status().message()).find("kernel RBD"), std::string::npos);
  }
  ASSERT_OK(pool_->delete_volume(v.id));
}

TEST_F(RbdPoolTest, SnapshotIsNativeAndRestoreIsByteIdentical) {
  Volume v = Make("pvc-native", 64 * kMiB);
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, 0, 3 * kMiB, 1));
    ASSERT_OK(WritePattern(*dev, 33 * kMiB, 5 * kMiB, 2));
    ASSERT_OK(WritePattern(*dev, 63 * kMiB, kMiB, 3));
  }
  ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-native"));
  EXPECT_EQ(s.size_bytes, v.size_bytes);
  EXPECT_TRUE(s.ready);
  // A native snapshot of the same image: no extra image.
  EXPECT_EQ(inspector_->Snaps(Image(v)), std::make_pair(1, 0));
  {  // change the source after the snapshot
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, kMiB, kMiB, 9));
  }
  ASSERT_OK_AND_ASSIGN(auto sdev, pool_->open_snapshot(s.id));
  ASSERT_OK_AND_ASSIGN(std::string want, Digest(*sdev));
  ASSERT_OK_AND_ASSIGN(Volume r, CloneOf("pvc-native-restore", VolumeSource::Kind::kSnapshot, s.id,
                                         96 * kMiB));
  EXPECT_EQ(inspector_->Depth(Image(r)), 1) << "a clone-v2 child";
  ASSERT_OK_AND_ASSIGN(auto rdev, pool_->open_volume(r.id, true));
  EXPECT_EQ(rdev->size(), 96 * kMiB);
  ASSERT_OK_AND_ASSIGN(std::string got, Digest(*rdev, 64 * kMiB));
  EXPECT_EQ(got, want);
  ASSERT_OK(CheckZeroes(*rdev, 64 * kMiB, 32 * kMiB));
}

TEST_F(RbdPoolTest, DeletingAParentSnapshotWithLiveChildren) {
  Volume v = Make("pvc-psnap", 16 * kMiB);
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, 0, 16 * kMiB, 5));
  }
  ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-parent"));
  ASSERT_OK_AND_ASSIGN(Volume c1, CloneOf("pvc-kid-1", VolumeSource::Kind::kSnapshot, s.id,
                                          16 * kMiB));
  ASSERT_OK_AND_ASSIGN(Volume c2, CloneOf("pvc-kid-2", VolumeSource::Kind::kSnapshot, s.id,
                                          16 * kMiB));
  ASSERT_OK(pool_->delete_snapshot(s.id));
  EXPECT_EQ(pool_->get_snapshot(s.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(inspector_->Snaps(Image(v)), std::make_pair(0, 1)) << "moved to the trash namespace";
  for (const Volume& c : {c1, c2}) {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(c.id, true));
    ASSERT_OK(CheckPattern(*dev, 0, 16 * kMiB, 5));
  }
  // The name is free again; the children keep working after the parent volume goes too.
  ASSERT_OK_AND_ASSIGN(Snapshot again, pool_->create_snapshot(v.id, "snap-parent"));
  ASSERT_OK(pool_->delete_snapshot(again.id));
  ASSERT_OK(pool_->delete_volume(v.id));
  EXPECT_TRUE(inspector_->Exists(Image(v))) << "hidden while children need it";
  ASSERT_OK(pool_->delete_volume(c1.id));
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(c2.id, true));
    ASSERT_OK(CheckPattern(*dev, 0, 16 * kMiB, 5));
  }
  ASSERT_OK(pool_->delete_volume(c2.id));
  EXPECT_FALSE(inspector_->Exists(Image(v))) << "collected with its last child";
  EXPECT_FALSE(inspector_->Exists(Image(c1)));
}

// A final clean-up deletes parents and their clones in any order, and a controller runs deletes
// of different volumes at the same time: the last image must go with the last delete, without
// waiting for a restart's sweep (the kill -9 campaign once found a parent left behind).
TEST_F(RbdPoolTest, ParentAndClonesDeletedConcurrentlyLeaveNothing) {
  std::vector<std::string> images;
  for (int round = 0; round < 4; ++round) {
    Volume p = MakeWritten(absl::StrCat("pvc-cc-", round), 8 * kMiB, {}, 20 + round);
    ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(p.id, absl::StrCat("snap-cc-", round)));
    ASSERT_OK_AND_ASSIGN(Volume c1, CloneOf(absl::StrCat("pvc-cc-vol-", round),
                                            VolumeSource::Kind::kVolume, p.id, 8 * kMiB));
    ASSERT_OK_AND_ASSIGN(Volume c2, CloneOf(absl::StrCat("pvc-cc-snap-", round),
                                            VolumeSource::Kind::kSnapshot, s.id, 8 * kMiB));
    ASSERT_OK_AND_ASSIGN(Volume c3, CloneOf(absl::StrCat("pvc-cc-grand-", round),
                                            VolumeSource::Kind::kVolume, c1.id, 8 * kMiB));
    for (const Volume& v : {p, c1, c2, c3}) images.push_back(Image(v));
    // Odd rounds: the snapshot first, as the campaign's clean-up does; even rounds: with the rest.
    if (round % 2) ASSERT_OK(pool_->delete_snapshot(s.id));
    std::vector<std::thread> deletes;
    std::vector<Status> results(5);
    auto del = [&](int i, std::function<Status()> f) { deletes.emplace_back([&, i, f] { results[i] = f(); }); };
    // Parent first on half the rounds, clones first on the other half.
    std::vector<Volume> order = round < 2 ? std::vector<Volume>{p, c1, c2, c3}
                                          : std::vector<Volume>{c3, c2, c1, p};
    // As the provisioner sidecar does, a delete answered "in use" is retried: the collection of
    // a clone opens its parent for a moment, and a watcher is a watcher.
    auto delete_like_a_sidecar = [&](const std::string& id) {
      Status r;
      for (int attempt = 0; attempt < 100; ++attempt) {
        r = pool_->delete_volume(id);
        if (r.code() != StatusCode::kFailedPrecondition) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      return r;
    };
    for (int i = 0; i < 4; ++i)
      del(i, [&, v = order[i]] { return delete_like_a_sidecar(v.id); });
    if (round % 2 == 0) del(4, [&] { return pool_->delete_snapshot(s.id); });
    for (auto& t : deletes) t.join();
    for (const Status& r : results) EXPECT_TRUE(r.ok()) << r;
  }
  impl().WaitForBackgroundWork();
  for (const auto& image : images) EXPECT_FALSE(inspector_->Exists(image)) << image << " left behind";
  EXPECT_EQ(inspector_->Records(fixture_->instance()), std::vector<std::string>{});
}

// A controller killed inside DeleteVolume of a clone after librbd removed the clone's image (its
// parent, already deleted and hidden, no longer needed) and before it collected the parent: the
// sidecar's retry of the same DeleteVolume must remove the parent too.
TEST_F(RbdPoolTest, RetriedDeleteOfAClonePastItsImageRemovalCollectsTheParent) {
  Volume p = MakeWritten("pvc-kp", 8 * kMiB, {}, 30);
  ASSERT_OK_AND_ASSIGN(Volume c, CloneOf("pvc-kc", VolumeSource::Kind::kVolume, p.id, 8 * kMiB));
  ASSERT_OK(pool_->delete_volume(p.id));
  ASSERT_TRUE(inspector_->Exists(Image(p))) << "hidden while its clone needs it";
  ASSERT_OK(inspector_->KilledAfterImageRemoval(fixture_->instance(), c.id));
  ASSERT_OK(pool_->delete_volume(c.id));  // the retry
  impl().WaitForBackgroundWork();
  EXPECT_FALSE(inspector_->Exists(Image(c)));
  EXPECT_FALSE(inspector_->Exists(Image(p))) << "the parent must go with its last clone";
  EXPECT_EQ(inspector_->Records(fixture_->instance()), std::vector<std::string>{});
}

// The last clone of a deleted parent goes while another client still watches the parent (a
// controller killed with the image open: its watch lasts until osd_client_watch_timeout): the
// parent's removal is retried in the background until the watch is gone.
TEST_F(RbdPoolTest, HiddenParentBusyWhenItsLastCloneGoesIsRemovedOnceFree) {
  Volume p = MakeWritten("pvc-bp", 8 * kMiB, {}, 31);
  ASSERT_OK_AND_ASSIGN(Volume c, CloneOf("pvc-bc", VolumeSource::Kind::kVolume, p.id, 8 * kMiB));
  ASSERT_OK(pool_->delete_volume(p.id));
  {
    ASSERT_OK_AND_ASSIGN(rbdb::Image watcher, inspector_->Hold(Image(p)));
    ASSERT_OK(pool_->delete_volume(c.id));
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_TRUE(inspector_->Exists(Image(p))) << "busy: kept while watched";
  }
  impl().WaitForBackgroundWork();
  EXPECT_FALSE(inspector_->Exists(Image(p))) << "removed once nobody watches it";
  EXPECT_EQ(inspector_->Records(fixture_->instance()), std::vector<std::string>{});
}

// A controller killed between rbd_clone3 and tagging the child leaves a child that carries its
// source's vdisk.id (librbd copies image metadata into clones). The retried create discards it:
// it is ours (the record's own random name) and must go, or it keeps its source's hidden
// snapshot, and so the source, for ever (the kill -9 campaign left three images that way).
TEST_F(RbdPoolTest, HalfMadeCloneCarryingItsSourcesTagIsDiscarded) {
  Volume src = MakeWritten("pvc-hm-src", 8 * kMiB, {}, 32);
  ASSERT_OK_AND_ASSIGN(std::string child,
                       inspector_->KilledBetweenCloneAndTag(fixture_->instance(), src, "pvc-hm"));
  ASSERT_EQ(inspector_->Tag(child), src.id) << "librbd copied the source's metadata";
  // The sidecar's retry of the killed create: takes the record over, discards, creates anew.
  ASSERT_OK_AND_ASSIGN(Volume c, CloneOf("pvc-hm", VolumeSource::Kind::kVolume, src.id, 8 * kMiB));
  EXPECT_FALSE(inspector_->Exists(child)) << "the half-made clone is removed";
  ASSERT_OK(pool_->delete_volume(c.id));
  ASSERT_OK(pool_->delete_volume(src.id));
  impl().WaitForBackgroundWork();
  EXPECT_FALSE(inspector_->Exists(Image(src))) << "nothing keeps the source";
  EXPECT_EQ(inspector_->Records(fixture_->instance()), std::vector<std::string>{});
}

TEST_F(RbdPoolTest, CloneFromVolumeUsesAHiddenSnapshotThatNeverLingers) {
  Volume v = Make("pvc-vsrc", 8 * kMiB);
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, 0, 8 * kMiB, 6));
  }
  ASSERT_OK_AND_ASSIGN(Volume c, CloneOf("pvc-vclone", VolumeSource::Kind::kVolume, v.id,
                                         8 * kMiB));
  EXPECT_EQ(inspector_->Snaps(Image(v)), std::make_pair(0, 1)) << "only a trashed hidden snap";
  ASSERT_OK_AND_ASSIGN(auto list, pool_->list_snapshots());
  EXPECT_TRUE(list.empty()) << "hidden snapshots are not CSI snapshots";
  ASSERT_OK(pool_->delete_volume(c.id));
  EXPECT_EQ(inspector_->Snaps(Image(v)), std::make_pair(0, 0));
}

TEST_F(RbdPoolTest, CloneChainPastTheSoftLimitIsFlattenedInTheBackground) {
  const blockdev::Params limits = {{"cloneSoftDepth", "1"}, {"cloneHardDepth", "8"}};
  Volume v = Make("pvc-chain-0", 8 * kMiB, limits);
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, 0, 8 * kMiB, 7));
  }
  ASSERT_OK_AND_ASSIGN(Volume c1, CloneOf("pvc-chain-1", VolumeSource::Kind::kVolume, v.id,
                                          8 * kMiB, limits));
  ASSERT_OK_AND_ASSIGN(Volume c2, CloneOf("pvc-chain-2", VolumeSource::Kind::kVolume, c1.id,
                                          8 * kMiB, limits));
  EXPECT_EQ(inspector_->Depth(Image(c1)), 1);
  impl().WaitForBackgroundWork();
  EXPECT_EQ(inspector_->Depth(Image(c2)), 0) << "depth 2 > soft limit 1: flattened";
  EXPECT_EQ(inspector_->Depth(Image(c1)), 1) << "depth 1: left alone";
  ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(c2.id, true));
  ASSERT_OK(CheckPattern(*dev, 0, 8 * kMiB, 7));
  // The flatten released c1's hidden snapshot.
  EXPECT_EQ(inspector_->Snaps(Image(c1)), std::make_pair(0, 0));
}

// Clones of snapshots of clones: the pool counts the chain from its records where that settles
// it, and must still see every level (a snapshot of a depth-1 clone yields a depth-2 clone).
TEST_F(RbdPoolTest, CloneChainThroughSnapshotsCountsEveryLevel) {
  const blockdev::Params limits = {{"cloneSoftDepth", "1"}, {"cloneHardDepth", "8"}};
  Volume v = MakeWritten("pvc-schain-0", 8 * kMiB, limits, 9);
  ASSERT_OK_AND_ASSIGN(Snapshot s0, pool_->create_snapshot(v.id, "snap-schain-0"));
  ASSERT_OK_AND_ASSIGN(Volume c1, CloneOf("pvc-schain-1", VolumeSource::Kind::kSnapshot, s0.id,
                                          8 * kMiB, limits));
  ASSERT_OK_AND_ASSIGN(Snapshot s1, pool_->create_snapshot(c1.id, "snap-schain-1"));
  ASSERT_OK_AND_ASSIGN(Volume c2, CloneOf("pvc-schain-2", VolumeSource::Kind::kSnapshot, s1.id,
                                          16 * kMiB, limits));
  impl().WaitForBackgroundWork();
  EXPECT_EQ(inspector_->Depth(Image(c1)), 1) << "depth 1: left alone";
  EXPECT_EQ(inspector_->Depth(Image(c2)), 0) << "depth 2 > soft limit 1: flattened";
  // After its flatten a snapshot of c2 clones at depth 1 again.
  ASSERT_OK_AND_ASSIGN(Snapshot s2, pool_->create_snapshot(c2.id, "snap-schain-2"));
  ASSERT_OK_AND_ASSIGN(Volume c3, CloneOf("pvc-schain-3", VolumeSource::Kind::kSnapshot, s2.id,
                                          16 * kMiB, limits));
  impl().WaitForBackgroundWork();
  EXPECT_EQ(inspector_->Depth(Image(c3)), 1);
  EXPECT_EQ(c2.size_bytes, 16 * kMiB) << "grown past its snapshot's size";
  ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(c3.id, true));
  EXPECT_EQ(dev->size(), 16 * kMiB);
  ASSERT_OK(CheckPattern(*dev, 0, 8 * kMiB, 9));
}

TEST_F(RbdPoolTest, CloneChainPastTheHardLimitWaitsForTheFlatten) {
  const blockdev::Params limits = {{"cloneSoftDepth", "2"}, {"cloneHardDepth", "2"}};
  Volume v = MakeWritten("pvc-hard-0", 8 * kMiB, limits, 8);
  ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-hard"));
  ASSERT_OK_AND_ASSIGN(Volume c1, CloneOf("pvc-hard-1", VolumeSource::Kind::kSnapshot, s.id,
                                          8 * kMiB, limits));
  ASSERT_OK_AND_ASSIGN(Volume c2, CloneOf("pvc-hard-2", VolumeSource::Kind::kVolume, c1.id,
                                          8 * kMiB, limits));
  EXPECT_EQ(inspector_->Depth(Image(c2)), 2) << "at the limit: a plain clone";
  ASSERT_OK_AND_ASSIGN(Volume c3, CloneOf("pvc-hard-3", VolumeSource::Kind::kVolume, c2.id,
                                          8 * kMiB, limits));
  EXPECT_EQ(inspector_->Depth(Image(c3)), 0) << "past the hard limit: flat when returned";
  ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(c3.id, true));
  ASSERT_OK(CheckPattern(*dev, 0, 8 * kMiB, 8));
  EXPECT_EQ(inspector_->Depth(Image(c2)), 2);
}

TEST_F(RbdPoolTest, BackgroundFlattenSurvivesARestart) {
  const blockdev::Params limits = {{"cloneSoftDepth", "0"}};
  Volume v = Make("pvc-bg-0", 64 * kMiB, limits);
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, 0, 64 * kMiB, 10));
  }
  ASSERT_OK_AND_ASSIGN(Volume c, CloneOf("pvc-bg-1", VolumeSource::Kind::kVolume, v.id, 64 * kMiB,
                                         limits));
  pool_.reset();  // the driver stops right away: the flatten is cancelled or never started
  Reopen();       // the sweep finds the pending flatten and runs it
  impl().WaitForBackgroundWork();
  EXPECT_EQ(inspector_->Depth(Image(c)), 0);
  ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(c.id, true));
  ASSERT_OK(CheckPattern(*dev, 0, 64 * kMiB, 10));
}

TEST_F(RbdPoolTest, DeletedVolumeWithSnapshotsIsHiddenUntilTheyGo) {
  Volume v = Make("pvc-hidden", 8 * kMiB);
  ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-hidden"));
  ASSERT_OK(pool_->delete_volume(v.id));
  EXPECT_EQ(pool_->get_volume(v.id).status().code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto none, pool_->list_volumes());
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(inspector_->Exists(Image(v)));
  Volume reuse = Make("pvc-hidden", 8 * kMiB);  // the name is free
  EXPECT_NE(reuse.id, v.id);
  Reopen();  // a restart does not collect it while the snapshot exists
  impl().WaitForBackgroundWork();
  EXPECT_TRUE(inspector_->Exists(Image(v)));
  ASSERT_OK(pool_->delete_snapshot(s.id));
  EXPECT_FALSE(inspector_->Exists(Image(v)));
}

TEST_F(RbdPoolTest, ChangeMapsMatchKnownWrites) {
  for (const char* mode : {"exact", "object"}) {
    SCOPED_TRACE(mode);
    pool_.reset();
    fixture_->TearDown();
    Start({{"diff", mode}});
    Volume v = Make("pvc-cbt", 64 * kMiB);
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, 0, 16 * kMiB, 1));
    ASSERT_OK_AND_ASSIGN(Snapshot s1, pool_->create_snapshot(v.id, "cbt-1"));
    const blockdev::ExtentList writes = {{4096, 8192}, {9 * kMiB, 64 * 1024}, {40 * kMiB, 4096}};
    for (const auto& w : writes) ASSERT_OK(WritePattern(*dev, w.offset, w.length, 2));
    ASSERT_OK(blockdev::Discard(*dev, 12 * kMiB, 4 * kMiB));  // a whole object freed
    ASSERT_OK_AND_ASSIGN(Snapshot s2, pool_->create_snapshot(v.id, "cbt-2"));
    ASSERT_OK_AND_ASSIGN(auto changed, pool_->changed_extents(s1.id, s2.id));
    blockdev::ExtentList want = writes;
    want.push_back({12 * kMiB, 4 * kMiB});
    for (const auto& w : want) {
      bool covered = false;
      for (const auto& e : changed) covered |= e.offset <= w.offset && e.end() >= w.end();
      EXPECT_TRUE(covered) << "write at " << w.offset << " missing";
    }
    // Nothing outside the objects written: objects 0, 2, 3, 10.
    const uint64_t obj = 4 * kMiB;
    for (const auto& e : changed)
      for (uint64_t o = e.offset / obj; o <= (e.end() - 1) / obj; ++o)
        EXPECT_TRUE(o == 0 || o == 2 || o == 3 || o == 10) << "object " << o << " reported";
    if (std::string(mode) == "object") {
      EXPECT_EQ(changed, (blockdev::ExtentList{{0, obj}, {2 * obj, 2 * obj}, {10 * obj, obj}}));
    } else {
      EXPECT_LT(blockdev::TotalBytes(changed), 4 * obj);
    }
    // Allocated data of the first snapshot: the first 16 MiB (and nothing else).
    ASSERT_OK_AND_ASSIGN(auto alloc, pool_->changed_extents("", s1.id));
    EXPECT_EQ(alloc, (blockdev::ExtentList{{0, 16 * kMiB}}));
    // Reversed order is refused.
    EXPECT_EQ(pool_->changed_extents(s2.id, s1.id).status().code(),
              StatusCode::kInvalidArgument);
  }
}

TEST_F(RbdPoolTest, CreatorKilledMidwayLeavesNothingVisibleAndARetryCleansUp) {
  pool_.reset();
  fixture_->TearDown();
  Start({});  // abandon_after stays 120 s: the owner lease, not the record's age, frees it
  const blockdev::Params limits = {{"cloneSoftDepth", "0"}, {"cloneHardDepth", "0"}};
  Volume v = Make("pvc-kill-src", 64 * kMiB, limits);
  {
    ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(v.id, false));
    ASSERT_OK(WritePattern(*dev, 0, 64 * kMiB, 4));
  }
  ASSERT_OK_AND_ASSIGN(Snapshot s, pool_->create_snapshot(v.id, "snap-kill"));
  // A helper process (another driver instance) restores the snapshot past the hard limit,
  // i.e. with a long synchronous flatten; it is killed once its image exists.
  std::string helper = absl::StrCat(std::getenv("VDISK_BINARY_DIR") ? std::getenv("VDISK_BINARY_DIR")
                                                                      : ".",
                                    "/tests/rbd/rbd_crash_helper");
  std::vector<std::string> args = {helper, fixture_->instance(), s.id, "pvc-killed"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Its log goes to a pipe; it is killed as soon as it reports that the flatten started.
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  pid_t pid;
  ASSERT_EQ(::posix_spawn(&pid, helper.c_str(), &fa, nullptr, argv.data(), environ), 0)
      << helper;
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  std::string log;
  bool seen = false;
  char buf[4096];
  ssize_t n;
  while (!seen && (n = ::read(out[0], buf, sizeof buf)) > 0) {
    log.append(buf, n);
    seen = log.find("rbd flatten") != std::string::npos &&
           log.find(": start") != std::string::npos;
  }
  ::kill(pid, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(seen) << "the helper never started its flatten:\n" << log;
  ASSERT_TRUE(WIFSIGNALED(status)) << "the helper finished before it was killed; status "
                                   << status;
  // Never visible.
  ASSERT_OK_AND_ASSIGN(auto found, pool_->find_volume_by_name("pvc-killed"));
  EXPECT_FALSE(found.has_value());
  ASSERT_OK_AND_ASSIGN(auto all, pool_->list_volumes());
  EXPECT_EQ(all.size(), 1u);
  // A retry right away is told to wait (the creator might be alive) ...
  VolumeRequest req;
  req.name = "pvc-killed";
  req.size_bytes = 64 * kMiB;
  req.source = {VolumeSource::Kind::kSnapshot, s.id};
  EXPECT_EQ(pool_->create_volume(req).status().code(), StatusCode::kAborted);
  // ... and once the dead creator's owner lease (10 s) has run out, the retry replaces the
  // half-made volume: a restarted controller recovers in seconds, not after abandon_after.
  StatusOr<Volume> made = absl::AbortedError("not tried");
  while (absl::IsAborted(made.status()) &&
         std::chrono::steady_clock::now() - killed < std::chrono::seconds(60)) {
    made = pool_->create_volume(req);
    if (!made.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_LT(took, 15) << "the dead creator's record was freed only after " << took << " s";
  Volume r = *made;
  EXPECT_EQ(inspector_->ImagesNamed("pvc-killed"), 1) << "the half-made image was removed";
  ASSERT_OK_AND_ASSIGN(auto dev, pool_->open_volume(r.id, true));
  ASSERT_OK(CheckPattern(*dev, 0, 64 * kMiB, 4));
}

}  // namespace
}  // namespace vdisk::pooltest
