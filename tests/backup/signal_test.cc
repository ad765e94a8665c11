// `vdisk backup create` / `restore` run as a Kubernetes Job runs them, stopped by SIGTERM in
// the middle (what the kubelet sends when a Job is deleted, preempted or drained): the process
// exits promptly with 143, leaves no repository lock (an exclusive prune runs right after), the
// same command run again resumes (the packs already uploaded are reused) and the restored disk
// is bit-identical. Against a file:// repository and against s3:// on the radosgw of the ceph
// fixture (BackupSignalS3.*, registered as its own test needing that fixture).
//
// To stop the process at a known point rather than by luck, it is frozen (SIGSTOP) as soon as
// it has visibly started working, sent SIGTERM, then thawed (SIGCONT): the SIGTERM is handled
// when it resumes, exactly as one arriving at that moment.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/backup/backup_test_util.h"

extern char** environ;

namespace vdisk::backup {
namespace {

using namespace vdisk::backup::testing;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr uint64_t MiB = 1ull << 20;

// A vdisk process whose stderr the test reads line by line.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args, const std::string& stdout_path) {
    int err[2];
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    spawned_ = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    ::close(err[1]);
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (err_ >= 0) ::close(err_);
  }
  bool spawned() const { return spawned_; }
  pid_t pid() const { return pid_; }
  const std::string& stderr_text() const { return err_text_; }

  // Reads stderr until `pred(stderr so far)` holds or the process ends / `seconds` pass.
  bool WaitFor(const std::function<bool(const std::string&)>& pred, double seconds) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (!pred(err_text_)) {
      if (Clock::now() > deadline) return false;
      struct pollfd p = {err_, POLLIN, 0};
      if (::poll(&p, 1, 5) > 0) {
        char buf[4096];
        ssize_t n = ::read(err_, buf, sizeof buf);
        if (n <= 0) return pred(err_text_);  // EOF: the process is gone
        err_text_.append(buf, n);
      }
    }
    return true;
  }
  // Waits for the exit; -1 on timeout. Returns the raw wait status in *status.
  bool Reap(double seconds, int* status) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
      WaitFor([](const std::string&) { return false; }, 0.05);  // keep draining stderr
      pid_t r = ::waitpid(pid_, status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        WaitFor([](const std::string&) { return false; }, 0.05);
        return true;
      }
      if (Clock::now() > deadline) return false;
    }
  }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  bool spawned_ = false;
  bool reaped_ = false;
  std::string err_text_;
};

// The last "bytes_done" of the --progress json lines on stderr.
uint64_t BytesDone(const std::string& err) {
  uint64_t done = 0;
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (!absl::StartsWith(line, "{\"")) continue;
    json j = json::parse(std::string(line), nullptr, false);
    if (j.is_object() && j.contains("bytes_done")) done = j["bytes_done"].get<uint64_t>();
  }
  return done;
}

uint64_t AllocatedOrZero(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

class BackupSignal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ScratchDir(std::string("sig-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::ofstream(dir_ + "/pw") << "signal test password\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Repository flags for every command.
  virtual std::vector<std::string> RepoArgs() { return {"--repo", "file://" + dir_ + "/repo"}; }
  // Objects under locks/ (a lock left behind), as far as the test can see them.
  virtual int LockObjects() {
    int n = 0;
    if (std::filesystem::exists(dir_ + "/repo/locks"))
      for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/repo/locks"))
        n += e.is_regular_file();
    return n;
  }

  std::vector<std::string> Command(const std::vector<std::string>& args) {
    std::vector<std::string> cmd = {VdiskBinary(), "backup"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    for (const auto& a : RepoArgs()) cmd.push_back(a);
    cmd.push_back("--password-file");
    cmd.push_back(dir_ + "/pw");
    return cmd;
  }
  // Runs a command to completion; returns its exit code, stdout in *out.
  int RunToEnd(const std::vector<std::string>& args, std::string* out = nullptr) {
    Child c(Command(args), dir_ + "/out.json");
    EXPECT_TRUE(c.spawned());
    int status = 0;
    EXPECT_TRUE(c.Reap(300, &status)) << "timed out";
    std::ifstream f(dir_ + "/out.json");
    std::string text((std::istreambuf_iterator<char>(f)), {});
    if (out) *out = text;
    last_stderr_ = c.stderr_text();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
  }
  // Runs a command, freezes it once `started` holds, sends SIGTERM, thaws it; returns the exit
  // code (1000+N if it was killed by signal N) and how long it took to exit after the thaw.
  int StopMidway(const std::vector<std::string>& args, const std::function<bool(const std::string&)>& started,
                 double* exit_seconds) {
    Child c(Command(args), dir_ + "/out.json");
    EXPECT_TRUE(c.spawned());
    EXPECT_TRUE(c.WaitFor(started, 120)) << "never started:\n" << c.stderr_text();
    ::kill(c.pid(), SIGSTOP);
    ::kill(c.pid(), SIGTERM);
    const auto thawed = Clock::now();
    ::kill(c.pid(), SIGCONT);
    int status = 0;
    EXPECT_TRUE(c.Reap(60, &status)) << "still running 60 s after SIGTERM";
    *exit_seconds = std::chrono::duration<double>(Clock::now() - thawed).count();
    last_stderr_ = c.stderr_text();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
  }

  void RunScenario() {
    const std::string disk = dir_ + "/disk.img";
    MakeDisk(disk, 320 * MiB, {{0, 96 * MiB, Fill::kRandom, 7},
                               {128 * MiB, 64 * MiB, Fill::kCompressible, 8},
                               {224 * MiB, 96 * MiB, Fill::kRandom, 9}});
    const std::string sha = Sha256File(disk);
    ASSERT_EQ(RunToEnd({"init", "--create", "--chunk-size", "256K", "--pack-size", "4M"}), 0) << last_stderr_;

    // 1. Backup stopped once it has read something.
    const std::vector<std::string> create = {"create", "--json", "--progress", "json", "--disk", "vm=" + disk,
                                             "--workers", "1", "--read-depth", "2"};
    double secs = 0;
    int rc = StopMidway(create, [](const std::string& e) { return BytesDone(e) >= 24 * MiB; }, &secs);
    EXPECT_EQ(rc, 143) << "a SIGTERMed backup should exit 143 after stopping cleanly (1015: killed by "
                          "the signal):\n" << last_stderr_;
    EXPECT_NE(last_stderr_.find("SIGTERM: vdisk backup create stops cleanly"), std::string::npos) << last_stderr_;
    EXPECT_NE(last_stderr_.find("CANCELLED"), std::string::npos) << last_stderr_;
    EXPECT_LT(secs, 20) << "took too long to stop (a Job has 30 s before SIGKILL)";
    EXPECT_EQ(LockObjects(), 0) << "the stopped backup left its repository lock";
    std::string out;
    // An exclusive operation (what a prune CronJob does) runs right away: no lock to wait for.
    EXPECT_EQ(RunToEnd({"prune", "--keep-last", "100", "--dry-run", "--json"}, &out), 0) << last_stderr_;
    ASSERT_EQ(RunToEnd({"list", "--json"}, &out), 0) << last_stderr_;
    EXPECT_TRUE(json::parse(out)["backups"].empty()) << "a cancelled backup must not be listed";

    // 2. The same command again finishes, reusing what the stopped run uploaded.
    ASSERT_EQ(RunToEnd(create, &out), 0) << last_stderr_;
    json made = json::parse(out);
    EXPECT_GT(made["packs_resumed"].get<int>(), 0) << "nothing of the stopped run was reused: " << out;

    // 3. Restore into a new file, stopped once it has written something.
    const std::string target = dir_ + "/restored.img";
    const std::vector<std::string> restore = {"restore", "latest", "--json", "--to", target, "--parallel", "1"};
    rc = StopMidway(restore, [&](const std::string&) { return AllocatedOrZero(target + ".vdisk-partial") >= 8 * MiB; },
                    &secs);
    EXPECT_EQ(rc, 143) << last_stderr_;
    EXPECT_LT(secs, 20);
    EXPECT_EQ(LockObjects(), 0) << "the stopped restore left its repository lock";
    EXPECT_EQ(RunToEnd({"prune", "--keep-last", "100", "--dry-run", "--json"}, &out), 0) << last_stderr_;
    EXPECT_FALSE(std::filesystem::exists(target)) << "an interrupted restore is never under its final name";
    EXPECT_TRUE(std::filesystem::exists(target + ".vdisk-partial"));

    // 4. The same restore again completes it; the disk is bit-identical.
    ASSERT_EQ(RunToEnd(restore, &out), 0) << last_stderr_;
    EXPECT_EQ(Sha256File(target), sha);
    EXPECT_FALSE(std::filesystem::exists(target + ".vdisk-partial"));
    ASSERT_EQ(RunToEnd({"verify", "--json"}, &out), 0) << last_stderr_;
  }

  std::string dir_, last_stderr_;
};

TEST_F(BackupSignal, FileRepositorySigtermMidBackupAndMidRestore) { RunScenario(); }

// The same against radosgw (needs the ceph fixture: $VDISK_CEPH_DIR/s3.env).
class BackupSignalS3 : public BackupSignal {
 protected:
  void SetUp() override {
    BackupSignal::SetUp();
    const char* ceph = std::getenv("VDISK_CEPH_DIR");
    ASSERT_TRUE(ceph && *ceph) << "VDISK_CEPH_DIR is not set (the ceph fixture provides it)";
    env_file_ = std::string(ceph) + "/s3.env";
    ASSERT_TRUE(std::filesystem::exists(env_file_)) << env_file_ << " missing: the ceph fixture did not start";
    bucket_ = absl::StrCat("vdisk-sig-", ::getpid());
  }
  std::vector<std::string> RepoArgs() override {
    return {"--repo", "s3://" + bucket_ + "/repo", "--s3-credentials-file", env_file_, "--s3-path-style"};
  }
  int LockObjects() override {
    // The objects under locks/ in the bucket, listed by an independent S3 client (boto3).
    std::string out;
    std::string ls = absl::StrCat("/usr/bin/python3 - <<'EOF'\n",
                                  "import boto3,os\n",
                                  "env=dict(l.strip().split('=',1) for l in open('", env_file_,
                                  "') if '=' in l and not l.startswith('#'))\n",
                                  "s=boto3.client('s3',endpoint_url=env['S3_ENDPOINT'],aws_access_key_id=env['S3_ACCESS_KEY'],",
                                  "aws_secret_access_key=env['S3_SECRET_KEY'],region_name=env.get('S3_REGION','default'))\n",
                                  "r=s.list_objects_v2(Bucket='", bucket_, "',Prefix='repo/locks/')\n",
                                  "print(r.get('KeyCount',0))\nEOF");
    if (testing::Run(ls, &out) != 0) {
      ADD_FAILURE() << "listing the bucket failed: " << out;
      return -1;
    }
    return std::atoi(out.c_str());
  }
  std::string env_file_, bucket_;
};

TEST_F(BackupSignalS3, S3RepositorySigtermMidBackupAndMidRestore) { RunScenario(); }

}  // namespace
}  // namespace vdisk::backup
