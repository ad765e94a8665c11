#include "tests/crash/process_rounds.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace vdisk::crash {

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A child process running `argv`, stdout to `out_path`, stderr to `err_path`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out >= 0) ::dup2(out, 1);
    if (err >= 0) ::dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Waits for `pid`; its exit code, or 128 + signal.
int Wait(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// True (and reaped) if `pid` has exited.
bool Exited(pid_t pid) {
  int st = 0;
  return ::waitpid(pid, &st, WNOHANG) == pid;
}

std::string ReadFile(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return absl::BytesToHexString(std::string(reinterpret_cast<char*>(md), len));
}

class Campaign {
 public:
  explicit Campaign(const ProcessCampaignOptions& o) : o_(o), rng_(o.seed) {}

  ProcessCampaignResult Run() {
    disk_ = o_.work + "/disk.img";
    std::ofstream(o_.work + "/pw") << "kill9 campaign password\n";
    {
      int fd = ::open(disk_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(o_.disk_bytes)) != 0)
        return Fail("cannot create " + disk_), std::move(r_);
      ::close(fd);
    }
    // The copy's source: dense enough (384 MiB of data) that a copy checkpoints (every 256 MiB
    // read) before it ends, so a kill can land after a checkpoint and the re-run resumes.
    copy_src_ = o_.work + "/copy-src.img";
    {
      int fd = ::open(copy_src_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      std::vector<uint64_t> buf((4 << 20) / 8);
      for (int mib = 0; fd >= 0 && mib < 384; mib += 4) {
        for (auto& v : buf) v = rng_();
        (void)!::pwrite(fd, buf.data(), 4 << 20, static_cast<off_t>(mib) << 20);
      }
      if (fd < 0 || ::ftruncate(fd, 512 << 20) != 0) return Fail("cannot create " + copy_src_), std::move(r_);
      ::close(fd);
    }
    if (Backup({"init", "--create"}) != 0) return Fail("backup init failed: " + Err()), std::move(r_);
    for (int round = 0; round < o_.rounds && r_.violations.empty(); ++round) {
      Scribble(round == 0 ? 24 : 4);
      BackupRound(round);
      RestoreRound(round);
      CopyRound(round);
    }
    if (r_.violations.empty() && Backup({"verify", "--deep"}) != 0)
      Fail("backup verify --deep after the campaign: " + Err());
    return std::move(r_);
  }

 private:
  void Fail(const std::string& what) {
    std::fprintf(stderr, "kill9: VIOLATION: %s\n", what.c_str());
    r_.violations.push_back(what);
  }
  std::string Err() { return ReadFile(o_.work + "/stderr").substr(0, 2000); }
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  // Random data in `regions` places (1-4 MiB each): something new to back up.
  void Scribble(int regions) {
    int fd = ::open(disk_.c_str(), O_WRONLY | O_CLOEXEC);
    for (int i = 0; i < regions; ++i) {
      const size_t len = (1 + Pick(4)) << 20;
      const off_t off = static_cast<off_t>(Pick(static_cast<size_t>((o_.disk_bytes - len) >> 20)) << 20);
      std::vector<uint64_t> buf(len / 8);
      for (auto& v : buf) v = rng_();
      (void)!::pwrite(fd, buf.data(), len, off);
    }
    ::fsync(fd);
    ::close(fd);
  }

  std::vector<std::string> BackupArgv(std::vector<std::string> args) {
    std::vector<std::string> argv = {o_.vdisk, "backup"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--repo", o_.repo, "--password-file", o_.work + "/pw", "--progress", "none"});
    return argv;
  }
  int Backup(std::vector<std::string> args) {
    return Wait(Spawn(BackupArgv(std::move(args)), o_.work + "/stdout", o_.work + "/stderr"));
  }

  // Runs `argv` and SIGKILLs it after a random part of the typical run time, then runs it
  // again to the end; returns the second run's exit code (its stdout in o_.work/stdout).
  int KillAndRerun(const std::vector<std::string>& argv, double& typical, Recovery& rec) {
    const double delay = Pick(6) == 0 ? 0.002 * static_cast<double>(Pick(5))
                                      : std::uniform_real_distribution<double>(0, 1.2 * typical)(rng_);
    const auto t0 = Clock::now();
    pid_t pid = Spawn(argv, o_.work + "/stdout", o_.work + "/stderr");
    bool done = false;
    while (Since(t0) < delay && !(done = Exited(pid))) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!done) {
      ::kill(pid, SIGKILL);
      Wait(pid);
      ++rec.killed_in_flight;
    } else {
      ++rec.finished_first;
      typical = 0.7 * typical + 0.3 * Since(t0);
    }
    const auto t1 = Clock::now();
    int rc = Wait(Spawn(argv, o_.work + "/stdout", o_.work + "/stderr"));
    if (rc == 0) {
      typical = 0.7 * typical + 0.3 * Since(t1);
      if (!done) rec.seconds.push_back(Since(t1));
    }
    std::printf("kill9: %-8s %s at %.3f s; re-run exit %d in %.2f s\n", argv[1] == "copy" ? "copy" : argv[2].c_str(),
                done ? "finished before the kill" : "killed", delay, rc, Since(t1));
    std::fflush(stdout);
    return rc;
  }

  void BackupRound(int round) {
    const std::string want = Sha256File(disk_);
    int rc = KillAndRerun(BackupArgv({"create", "--disk", "rootdisk=" + disk_, "--group", "kill9", "--json"}),
                          backup_s_, r_.backup);
    if (rc != 0) return Fail(absl::StrCat("round ", round, ": backup re-run exit ", rc, ": ", Err()));
    auto j = nlohmann::json::parse(ReadFile(o_.work + "/stdout"), nullptr, false);
    if (j.is_object() && j.value("packs_resumed", 0) > 0) ++r_.backups_resumed;
    disk_sha_ = want;
  }

  void RestoreRound(int round) {
    const std::string out = o_.work + "/restored.img";
    ::unlink(out.c_str());
    int rc = KillAndRerun(BackupArgv({"restore", "latest", "--group", "kill9", "--disk", "rootdisk", "--to", out}),
                          restore_s_, r_.restore);
    if (rc != 0) return Fail(absl::StrCat("round ", round, ": restore re-run exit ", rc, ": ", Err()));
    if (Sha256File(out) != disk_sha_)
      Fail(absl::StrCat("round ", round, ": the restored disk differs from what was backed up"));
  }

  void CopyRound(int round) {
    const std::string dst = o_.work + "/copy.img";
    const std::string ckpt = o_.work + "/copy.ckpt";
    ::unlink(dst.c_str());
    ::unlink((dst + ".partial").c_str());
    ::unlink(ckpt.c_str());
    int rc = KillAndRerun({o_.vdisk, "copy", copy_src_, dst, "--checkpoint", ckpt, "--json", "-q"},
                          copy_s_, r_.copy);
    if (rc != 0) return Fail(absl::StrCat("round ", round, ": copy re-run exit ", rc, ": ", Err()));
    auto j = nlohmann::json::parse(ReadFile(o_.work + "/stdout"), nullptr, false);
    if (j.is_object() && j.value("resumed", false)) ++r_.copies_resumed;
    if (Sha256File(dst) != Sha256File(copy_src_))
      Fail(absl::StrCat("round ", round, ": the resumed copy differs from its source"));
  }

  const ProcessCampaignOptions& o_;
  std::mt19937_64 rng_;
  std::string disk_, disk_sha_, copy_src_;
  double backup_s_ = 1.0, restore_s_ = 0.5, copy_s_ = 2.0;
  ProcessCampaignResult r_;
};

}  // namespace

ProcessCampaignResult RunProcessCampaign(const ProcessCampaignOptions& o) {
  return Campaign(o).Run();
}

}  // namespace vdisk::crash
