// Faults from below, part 3: radosgw stops in the middle of `vdisk backup create` and of
// `vdisk backup restore` (the real CLI against the `ceph` fixture's S3). Each retries for its
// --s3-retry-seconds budget, then exits 1 with a message that says what to do; with radosgw
// back, the same command resumes (the backup reuses the packs stored before the outage) and the
// restore is bit-identical.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/backup/backup_test_util.h"
#include "tests/env/env_file.h"

namespace vdisk::backup {
namespace {

using namespace vdisk::backup::testing;
int Sh(const std::string& cmd) { return vdisk::backup::testing::Run(cmd); }
using Clock = std::chrono::steady_clock;
constexpr uint64_t MiB = 1ull << 20;


class RgwStopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(CephDir().empty()) << "VDISK_CEPH_DIR unset: run through ctest (fixture ceph)";
    auto kv = vdisk::testing::ReadEnvFile(CephDir() + "/s3.env", "ceph");
    ASSERT_TRUE(kv.ok()) << kv.status();
    for (const auto& [k, v] : *kv) ::setenv(k.c_str(), v.c_str(), 1);
    dir_ = ScratchDir("rgw-stop");
    std::ofstream(dir_ + "/pw") << "rgw outage\n";
    repo_ = "s3://rgw-stop-" + std::to_string(::getpid());
  }
  void TearDown() override {
    Sh(CephScript() + " start-rgw " + CephDir() + " >/dev/null 2>&1");  // never leave it down
    Sh("rm -rf " + dir_);
  }

  std::vector<std::string> Argv(const std::vector<std::string>& args) {
    std::vector<std::string> v = {VdiskBinary(), "backup"};
    v.insert(v.end(), args.begin(), args.end());
    v.insert(v.end(), {"--repo", repo_, "--password-file", dir_ + "/pw", "--s3-retry-seconds", "5"});
    return v;
  }

  // Runs `vdisk backup args` with progress as JSON lines; stops radosgw as soon as a progress line
  // shows more than `stop_after` bytes transferred (0: never). The command is frozen (SIGSTOP)
  // while radosgw goes down (which takes up to ~1 s) so that the outage really lands mid-transfer
  // however fast the rest of the transfer would have been. Returns the exit code; stdout and
  // stderr are in *out / *err, and the seconds from the outage to the exit in *after_stop.
  int RunStopping(const std::vector<std::string>& args, uint64_t stop_after, std::string* out,
                  std::string* err, double* after_stop = nullptr) {
    int po[2], pe[2];
    EXPECT_EQ(::pipe(po), 0);
    EXPECT_EQ(::pipe(pe), 0);
    std::vector<std::string> argv = Argv(args);
    argv.insert(argv.end(), {"--progress", "json"});
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(po[1], 1);
      ::dup2(pe[1], 2);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      _exit(127);
    }
    ::close(po[1]);
    ::close(pe[1]);
    std::thread reader([&, fd = po[0]] {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out->append(buf, static_cast<size_t>(n));
    });
    bool stopped = false;
    Clock::time_point stop_time;
    std::string line;
    char c;
    while (::read(pe[0], &c, 1) == 1) {
      err->push_back(c);
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      auto j = nlohmann::json::parse(line, nullptr, false);
      line.clear();
      if (stop_after && !stopped && j.is_object() && j.value("bytes_transferred", uint64_t{0}) > stop_after) {
        stopped = true;
        ::kill(pid, SIGSTOP);
        EXPECT_EQ(Sh(CephScript() + " stop-rgw " + CephDir() + " >/dev/null 2>&1"), 0);
        stop_time = Clock::now();
        ::kill(pid, SIGCONT);
      }
    }
    reader.join();
    ::close(po[0]);
    ::close(pe[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (stop_after) {
      EXPECT_TRUE(stopped) << "the outage never started:\n" << *err;
    }
    if (after_stop && stopped)
      *after_stop = std::chrono::duration<double>(Clock::now() - stop_time).count();
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

  std::string dir_, repo_;
};

TEST_F(RgwStopTest, BackupAndRestoreFailResumablyAndCompleteWhenRadosgwIsBack) {
  std::string out, err;
  ASSERT_EQ(RunStopping({"init", "--create", "--pack-size", "8M"}, 0, &out, &err), 0) << err;
  const std::string disk = dir_ + "/disk.img";
  // Enough data (40 packs) that a restore is still fetching when its first progress line comes.
  MakeDisk(disk, 384 * MiB, {{0, 320 * MiB, Fill::kRandom, 5}});

  // Backup: radosgw goes away after the first pack; the run gives up after its retry budget.
  out.clear(), err.clear();
  double after = 0;
  int rc = RunStopping({"create", "--disk", "rootdisk=" + disk, "--json"}, 9 * MiB, &out, &err, &after);
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("re-run the same command to resume"), std::string::npos) << err;
  EXPECT_LT(after, 60) << "the backup kept retrying for " << after << " s (--s3-retry-seconds 5)";
  ASSERT_EQ(Sh(CephScript() + " start-rgw " + CephDir() + " >/dev/null 2>&1"), 0);
  out.clear(), err.clear();
  ASSERT_EQ(RunStopping({"create", "--disk", "rootdisk=" + disk, "--json"}, 0, &out, &err), 0) << err;
  auto made = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(made.is_object()) << out;
  EXPECT_GE(made.value("packs_resumed", 0), 1) << "what was stored before the outage is reused";

  // Restore: radosgw goes away after 16 MiB were downloaded.
  const std::string target = dir_ + "/restored.img";
  out.clear(), err.clear();
  // One connection: most packs are still to be fetched when radosgw goes away.
  rc = RunStopping({"restore", "latest", "--to", target, "--s3-concurrency", "1"}, 16 * MiB, &out, &err,
                   &after);
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("re-run the same command"), std::string::npos) << err;
  EXPECT_LT(after, 60);
  ASSERT_EQ(Sh(CephScript() + " start-rgw " + CephDir() + " >/dev/null 2>&1"), 0);
  out.clear(), err.clear();
  ASSERT_EQ(RunStopping({"restore", "latest", "--to", target}, 0, &out, &err), 0) << err;
  EXPECT_EQ(Sha256File(target), Sha256File(disk));
}

}  // namespace
}  // namespace vdisk::backup
