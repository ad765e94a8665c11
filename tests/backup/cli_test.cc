// `vdisk backup ...` end to end through the real binary on a file:// repository: JSON output,
// exit codes (0 ok, 1 failed, 2 usage, 3 verification failed / data lost), messages.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>

#include <nlohmann/json.hpp>

#include "tests/backup/backup_test_util.h"

namespace vdisk::backup {
namespace {

using namespace vdisk::backup::testing;
using nlohmann::json;
constexpr uint64_t MiB = 1ull << 20;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ScratchDir(std::string("cli-") +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::ofstream(dir_ + "/pw") << "cli password\n";
    std::ofstream(dir_ + "/badpw") << "not it\n";
    repo_ = "file://" + dir_ + "/repo";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `vdisk backup <args>` with the repository and password; returns the exit code.
  int Vdisk(const std::string& args, std::string* out = nullptr, const std::string& pw = "pw") {
    std::string cmd = VdiskBinary() + " backup " + args + " --repo " + repo_ + " --password-file " +
                      dir_ + "/" + pw + " 2>" + dir_ + "/stderr";
    int rc = testing::Run(cmd, out);
    std::ifstream e(dir_ + "/stderr");
    stderr_.assign((std::istreambuf_iterator<char>(e)), {});
    return rc;
  }
  json Json(const std::string& text) { return json::parse(text, nullptr, false); }

  std::string dir_, repo_, stderr_;
};

// A one-shot HTTP receiver on 127.0.0.1 standing in for a Pushgateway: answers 200 to the
// first request and hands back what it received (request line, headers and body).
class OneShotHttp {
 public:
  OneShotHttp() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    received_ = std::async(std::launch::async, [fd = fd_] {
      int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      std::string in;
      char buf[4096];
      size_t need = std::string::npos;
      while (in.size() < need) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
        auto end = in.find("\r\n\r\n");
        auto cl = in.find("Content-Length: ");
        if (end != std::string::npos && cl != std::string::npos)
          need = end + 4 + std::stoul(in.substr(cl + 16));
      }
      const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
      (void)!::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
      ::close(c);
      return in;
    });
  }
  ~OneShotHttp() { ::close(fd_); }
  int port() const { return port_; }
  std::string Received() { return received_.get(); }

 private:
  int fd_ = -1, port_ = 0;
  std::future<std::string> received_;
};

TEST_F(CliTest, InitCreateListShowRestoreVerifyPrune) {
  std::string out;
  ASSERT_EQ(Vdisk("init --create --json", &out), 0) << stderr_;
  EXPECT_EQ(Json(out)["chunk_size"], 1 << 20);
  EXPECT_EQ(Vdisk("init"), 1);  // exists already
  EXPECT_NE(stderr_.find("already exists"), std::string::npos) << stderr_;

  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 48 * MiB, {{3 * MiB, 5 * MiB, Fill::kRandom, 1}, {30 * MiB, 4 * MiB, Fill::kCompressible, 2}});
  std::filesystem::create_directories(dir_ + "/k8s");
  std::ofstream(dir_ + "/k8s/vm.yaml")
      << "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: demo\n  namespace: ns1\n";
  ASSERT_EQ(Vdisk("create --json --disk rootdisk=" + disk + " --k8s " + dir_ + "/k8s --tag env=test", &out), 0)
      << stderr_;
  json created = Json(out);
  ASSERT_TRUE(created["ok"].get<bool>()) << out;
  const std::string id = created["id"];
  EXPECT_EQ(created["group"], "ns1/demo");
  EXPECT_EQ(created["disks"][0]["bytes_read"], 9 * MiB);
  EXPECT_EQ(created["kubernetes"], 1);

  ASSERT_EQ(Vdisk("list --json", &out), 0) << stderr_;
  ASSERT_EQ(Json(out)["backups"].size(), 1u);
  EXPECT_EQ(Json(out)["backups"][0]["tags"]["env"], "test");

  ASSERT_EQ(Vdisk("show latest --json --k8s-out " + dir_ + "/k8s-out", &out), 0) << stderr_;
  EXPECT_EQ(Json(out)["backup"]["id"], id);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/k8s-out/vm.yaml"));

  ASSERT_EQ(Vdisk("restore " + id.substr(0, 20) + " --json --to " + dir_ + "/restored.img", &out), 0)
      << stderr_;
  EXPECT_EQ(Json(out)["disks"][0]["bytes_written"], 9 * MiB);
  EXPECT_EQ(Sha256File(dir_ + "/restored.img"), Sha256File(disk));
  EXPECT_LE(AllocatedBytes(dir_ + "/restored.img"), AllocatedBytes(disk));

  ASSERT_EQ(Vdisk("restore --to-dir " + dir_ + "/all", &out), 0) << stderr_;
  EXPECT_EQ(Sha256File(dir_ + "/all/rootdisk.img"), Sha256File(disk));

  ASSERT_EQ(Vdisk("verify --deep --json", &out), 0) << stderr_;
  EXPECT_TRUE(Json(out)["ok"].get<bool>());

  // A second backup (auto parent), then prune to one.
  WriteRegions(disk, {{3 * MiB, 1 * MiB, Fill::kRandom, 9}});
  ASSERT_EQ(Vdisk("create --json --disk rootdisk=" + disk + " --group ns1/demo", &out), 0) << stderr_;
  EXPECT_EQ(Json(out)["parent"], id);
  ASSERT_EQ(Vdisk("prune --keep-last 1 --json", &out), 0) << stderr_;
  EXPECT_EQ(Json(out)["removed"], json::array({id}));
  ASSERT_EQ(Vdisk("delete latest --json", &out), 0) << stderr_;
  ASSERT_EQ(Vdisk("list --json", &out), 0);
  EXPECT_TRUE(Json(out)["backups"].empty());
}

TEST_F(CliTest, ExitCodesAndMessages) {
  std::string out;
  // No repository yet.
  EXPECT_EQ(Vdisk("list"), 1);
  EXPECT_NE(stderr_.find("no vdisk backup repository"), std::string::npos) << stderr_;
  ASSERT_EQ(Vdisk("init --create"), 0) << stderr_;
  // Wrong password.
  EXPECT_EQ(Vdisk("list --json", &out, "badpw"), 1);
  EXPECT_NE(stderr_.find("wrong repository password"), std::string::npos) << stderr_;
  EXPECT_EQ(Json(out)["error"]["code"], "PERMISSION_DENIED");
  // Usage errors.
  EXPECT_EQ(Vdisk("create"), 2);  // --disk is required
  EXPECT_EQ(Vdisk("restore latest"), 2);  // no target
  EXPECT_EQ(Vdisk("prune"), 2);  // no policy

  // Corruption: verify --deep and restore exit 3.
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 8 * MiB, {{0, 2 * MiB, Fill::kRandom, 1}});
  ASSERT_EQ(Vdisk("create --disk " + disk), 0) << stderr_;
  std::string pack;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/repo/packs"))
    if (e.is_regular_file()) pack = e.path();
  ASSERT_FALSE(pack.empty());
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.write("XXXX", 4);
  }
  EXPECT_EQ(Vdisk("verify"), 0) << stderr_;  // metadata is intact
  EXPECT_EQ(Vdisk("verify --deep --json", &out), 3);
  EXPECT_FALSE(Json(out)["ok"].get<bool>());
  EXPECT_LT(Json(out)["problems"][0]["offset"].get<uint64_t>(), 2 * MiB);  // the first blob: chunk 0 or 1
  EXPECT_EQ(Vdisk("restore --to " + dir_ + "/out.img"), 3);
  EXPECT_NE(stderr_.find("could not be restored"), std::string::npos) << stderr_;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out.img"));
}

TEST_F(CliTest, BackupFiguresGoToATextfileAndAPushgateway) {
  ASSERT_EQ(Vdisk("init --create"), 0) << stderr_;
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 16 * MiB, {{0, 3 * MiB, Fill::kRandom, 7}});
  OneShotHttp gateway;
  std::string out;
  ASSERT_EQ(Vdisk("create --disk rootdisk=" + disk + " --group ns/vm --metrics-file " + dir_ +
                      "/backup.prom --push-gateway http://127.0.0.1:" + std::to_string(gateway.port()),
                  &out),
            0)
      << stderr_;
  EXPECT_NE(out.find("deduplicated"), std::string::npos) << out;
  std::ifstream in(dir_ + "/backup.prom");
  std::string prom((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(prom.find("vdisk_backup_success{group=\"ns/vm\"} 1\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("vdisk_backup_disk_read_bytes{group=\"ns/vm\",disk=\"rootdisk\"} 3145728\n"),
            std::string::npos) << prom;
  EXPECT_NE(prom.find("vdisk_backup_disk_chunks{group=\"ns/vm\",disk=\"rootdisk\",kind=\"new\"} 3\n"),
            std::string::npos) << prom;
  EXPECT_NE(prom.find("# TYPE vdisk_backup_last_success_timestamp_seconds gauge"), std::string::npos);
  // The same text was PUT under the job and the base64-encoded group ("ns/vm" -> bnMvdm0=).
  std::string pushed = gateway.Received();
  EXPECT_TRUE(pushed.starts_with("PUT /metrics/job@base64/dmRpc2tfYmFja3Vw/group@base64/bnMvdm0= HTTP/1.1"))
      << pushed;
  EXPECT_NE(pushed.find("\r\n\r\n" + prom), std::string::npos);

  // A failed backup still reports, with success 0.
  EXPECT_EQ(Vdisk("create --disk rootdisk=" + dir_ + "/missing.img --group ns/vm --metrics-file " + dir_ +
                  "/backup.prom"),
            1);
  std::ifstream in2(dir_ + "/backup.prom");
  std::string failed((std::istreambuf_iterator<char>(in2)), {});
  EXPECT_NE(failed.find("vdisk_backup_success{group=\"ns/vm\"} 0\n"), std::string::npos) << failed;
}

}  // namespace
}  // namespace vdisk::backup
