// A real QEMU guest (Debian kernel, busybox initramfs, TCG) on the vhost-user-blk export:
// patterns written and read on two queues, flush, discard, write-zeroes, online growth, QEMU
// killed mid-write and restarted on the same export, and a read-only export through the CLI.
// The disks are volumes of a real local pool (kind "local"); the host checks the bytes and holes
// of the volume's image file. Needs the `guest` fixture.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "blockdev/pool.h"
#include "blockdev/registry.h"
#include "blockdev/vhost/export.h"
#include "tests/vhost/pattern.h"
#include "tests/vhost/qemu_guest.h"

namespace vdisk::blockdev::vhost {
namespace {

namespace fs = std::filesystem;
using vdisk::testing::Pattern;
using vdisk::testing::QemuGuest;

constexpr uint64_t M = 1 << 20;

class VhostQemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(vdisk::testing::GuestDir() + "/vmlinuz"))
        << "guest not built: the `guest` fixture (tests/env/guest.sh build) must run first";
    // On the build disk, not /tmp (may be tmpfs): the pool wants a real file system.
    std::string base = vdisk::testing::BinaryDir() + "/test-tmp";
    fs::create_directories(base);
    std::string tmpl_s = base + "/vhost-qemu.XXXXXX";
    std::vector<char> tmpl(tmpl_s.begin(), tmpl_s.end());
    tmpl.push_back('\0');
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl.data();
    // The socket path must fit sun_path (108 bytes): keep it short, under /tmp.
    char sock_tmpl[] = "/tmp/vdisk-vhost-sock.XXXXXX";
    ASSERT_NE(::mkdtemp(sock_tmpl), nullptr);
    sock_dir_ = sock_tmpl;
    socket_ = sock_dir_ + "/vhost.sock";
    pool_root_ = dir_ + "/pool";
    blockdev::RegisterBuiltinBackends();
    auto config = blockdev::ParsePoolFlag("local:" + pool_root_);
    ASSERT_TRUE(config.ok()) << config.status();
    ASSERT_TRUE(pools_.Add(*config).ok());
    auto pool = pools_.Get(pools_.default_pool());
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *pool;
  }
  void TearDown() override {
    fs::remove_all(dir_);
    fs::remove_all(sock_dir_);
  }

  // Creates a Block-mode volume; image_ becomes its disk image (the pool's layout).
  std::string CreateVolume(const std::string& name, uint64_t size) {
    blockdev::VolumeRequest req;
    req.name = name;
    req.size_bytes = size;
    req.mode = blockdev::VolumeMode::kBlock;
    req.access_modes = {blockdev::AccessMode::kSingleNodeWriter};
    auto v = pool_->create_volume(req);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return "";
    image_ = pool_root_ + "/volumes/" + v->id + "/disk.img";
    EXPECT_TRUE(fs::exists(image_)) << image_;
    return v->id;
  }
  std::shared_ptr<Device> Open(const std::string& id, bool read_only = false) {
    auto d = pool_->open_volume(id, read_only);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::shared_ptr<Device>(std::move(*d)) : nullptr;
  }

  std::string Script(const std::string& name) {
    return vdisk::testing::SourceDir() + "/tests/vhost/guest/" + name;
  }
  QemuGuest::Options Guest(const std::string& script, unsigned queues = 1) {
    QemuGuest::Options o;
    o.script = Script(script);
    o.socket = socket_;
    o.cpus = queues;
    o.queues = queues;
    o.work_dir = dir_;
    return o;
  }
  std::string ReadFile(uint64_t off, uint64_t len) {
    std::string out(len, '\0');
    int fd = ::open(image_.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, out.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
    ::close(fd);
    return out;
  }
  bool IsHole(uint64_t off, uint64_t len) {
    int fd = ::open(image_.c_str(), O_RDONLY);
    off_t data = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    ::close(fd);
    return data < 0 || static_cast<uint64_t>(data) >= off + len;
  }
  static std::string Fnv(const std::string& bytes) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }

  std::string dir_, sock_dir_, image_, socket_, pool_root_;
  blockdev::PoolSet pools_;
  std::shared_ptr<blockdev::Pool> pool_;
};

TEST_F(VhostQemuTest, GuestReadsWritesDiscardsGrowsAndSurvivesQemuRestart) {
  std::string id = CreateVolume("vm-root", 64 * M);
  ASSERT_FALSE(id.empty());
  std::shared_ptr<Device> dev = Open(id);
  ASSERT_TRUE(dev);
  ExportOptions eo;
  eo.socket_path = socket_;
  eo.num_queues = 2;
  eo.serial = "vdisk-qemu-test";
  auto exp = Export::Start(dev, eo);
  ASSERT_TRUE(exp.ok()) << exp.status();

  // --- boot 1 ---
  {
    QemuGuest g;
    ASSERT_EQ(g.Start(Guest("readwrite_resize.sh", 2)), "");
    ASSERT_TRUE(g.WaitFor("VDISK-READY-RESIZE")) << g.output();
    EXPECT_EQ(g.Value("size0"), std::to_string(64 * M));
    EXPECT_EQ(g.Value("queues"), "2");
    EXPECT_EQ(g.Value("ro0"), "0");
    EXPECT_EQ(g.Value("serial"), "vdisk-qemu-test");
    EXPECT_EQ(g.Value("discard_max"), std::to_string(1u << 30));
    EXPECT_EQ(g.Value("fill"), "00");
    EXPECT_EQ(g.Value("check"), "ok");
    EXPECT_EQ(g.Value("flush"), "ok");
    EXPECT_EQ(g.Value("discard"), "ok");
    EXPECT_EQ(g.Value("zeroout"), "ok");
    EXPECT_EQ(g.Value("untouched"), "ok");
    // What the guest read equals the file's bytes.
    EXPECT_EQ(g.Value("fnv"), Fnv(ReadFile(0, 16 * M)));
    // Host view: patterns, a hole where the guest discarded, zeroes where it wrote zeroes.
    EXPECT_TRUE(ReadFile(0, 4 * M) == Pattern(1, 0, 4 * M));
    EXPECT_TRUE(ReadFile(10 * M, M) == Pattern(2, 10 * M, M));
    EXPECT_TRUE(IsHole(8 * M, 2 * M));
    EXPECT_TRUE(ReadFile(8 * M, 2 * M) == std::string(2 * M, '\0'));
    EXPECT_TRUE(ReadFile(11 * M, M) == std::string(M, '\0'));
    ExportStats st = (*exp)->stats();
    ASSERT_EQ(st.queue_requests.size(), 2u);
    EXPECT_GT(st.queue_requests[0], 0u) << "queue 0 unused";
    EXPECT_GT(st.queue_requests[1], 0u) << "queue 1 unused";
    EXPECT_EQ(st.io_errors, 0u);

    // Online growth: the pool expands the volume, the export is handed the reopened volume,
    // and the guest is told (virtio config change) without a reboot.
    auto expanded = pool_->expand_volume(id, 96 * M);
    ASSERT_TRUE(expanded.ok()) << expanded.status();
    auto size = (*exp)->Resize(Open(id));
    ASSERT_TRUE(size.ok()) << size.status();
    ASSERT_TRUE(g.WaitFor("VDISK-LOOPING")) << g.output();
    EXPECT_EQ(g.Value("size1"), std::to_string(96 * M));
    EXPECT_EQ(g.Value("grown"), "ok");
    EXPECT_TRUE(ReadFile(64 * M, M) == Pattern(3, 64 * M, M));

    // QEMU dies with writes in flight.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    g.Kill();
  }
  for (int i = 0; i < 200 && (*exp)->stats().connected; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE((*exp)->stats().connected);
  EXPECT_TRUE(fs::exists(socket_));

  // --- boot 2: a new QEMU on the same export sees everything boot 1 wrote ---
  {
    QemuGuest g;
    ASSERT_EQ(g.Start(Guest("after_restart.sh", 1)), "");
    EXPECT_EQ(g.Wait(180), 0) << g.output();
    EXPECT_EQ(g.Value("size"), std::to_string(96 * M)) << g.output();
    EXPECT_EQ(g.Value("persist"), "ok") << g.output();
    EXPECT_EQ(g.Value("write2"), "ok") << g.output();
    EXPECT_NE(g.output().find("VDISK-GUEST-EXIT: 0"), std::string::npos) << g.output();
  }
  EXPECT_TRUE(ReadFile(20 * M, M) == Pattern(5, 20 * M, M));
  EXPECT_EQ((*exp)->stats().connections, 2u);
  (*exp)->Stop();
  EXPECT_FALSE(fs::exists(socket_));
}

TEST_F(VhostQemuTest, ReadOnlyPoolVolumeThroughTheCli) {
  std::string id = CreateVolume("vm-data", 32 * M);
  ASSERT_FALSE(id.empty());
  {
    int fd = ::open(image_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::string p = Pattern(1, 0, M);
    ASSERT_EQ(::pwrite(fd, p.data(), p.size(), 0), static_cast<ssize_t>(p.size()));
    ::close(fd);
  }
  std::string vdisk = vdisk::testing::BinaryDir() + "/cli/vdisk";
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  pid_t serve = ::fork();
  if (serve == 0) {
    ::dup2(out[1], 1);
    std::string pool_flag = "local:" + pool_root_;
    ::execl(vdisk.c_str(), "vdisk", "serve", "--socket", socket_.c_str(), "--pool",
            pool_flag.c_str(), "--volume", id.c_str(), "--read-only", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string ready;
  char c;
  while (ready.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) ready += c;
  ::close(out[0]);
  ASSERT_EQ(ready, "vdisk-serve: ready " + socket_ + "\n");

  QemuGuest g;
  ASSERT_EQ(g.Start(Guest("read_only.sh")), "");
  EXPECT_EQ(g.Wait(180), 0) << g.output();
  EXPECT_EQ(g.Value("ro"), "1") << g.output();
  EXPECT_EQ(g.Value("read"), "ok") << g.output();
  EXPECT_EQ(g.Value("write"), "rejected") << g.output();
  EXPECT_EQ(g.Value("forced"), "rejected") << g.output();
  EXPECT_EQ(g.Value("discard"), "rejected") << g.output();
  EXPECT_TRUE(ReadFile(0, M) == Pattern(1, 0, M));

  ASSERT_EQ(::kill(serve, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(serve, &status, 0), serve);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(fs::exists(socket_));
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
