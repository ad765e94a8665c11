#include "tests/csi/driver_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/fs.h"

namespace vdisk::csi::testing {

namespace {

std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string f[5];
    for (auto& x : f) ss >> x;
    std::string mp = Unescape(f[4]);
    if (mp == dir || mp.starts_with(dir + "/")) out.push_back(mp);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

std::vector<std::string> LoopsUnder(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir("/sys/block");
  if (!d) return out;
  while (auto* e = readdir(d)) {
    std::string n = e->d_name;
    if (!n.starts_with("loop")) continue;
    std::ifstream bf("/sys/block/" + n + "/loop/backing_file");
    std::string backing;
    if (bf && std::getline(bf, backing) && backing.starts_with(dir + "/")) out.push_back("/dev/" + n);
  }
  closedir(d);
  return out;
}

}  // namespace

Leftovers FindUnder(const std::string& dir) {
  return {static_cast<int>(MountsUnder(dir).size()), static_cast<int>(LoopsUnder(dir).size())};
}

Leftovers CleanUnder(const std::string& dir) {
  Leftovers l;
  for (int round = 0; round < 4; ++round) {
    auto mounts = MountsUnder(dir);
    for (const auto& m : mounts) {
      if (::umount2(m.c_str(), 0) != 0) ::umount2(m.c_str(), MNT_DETACH);
      ++l.mounts;
    }
    auto loops = LoopsUnder(dir);
    for (const auto& dev : loops) {
      int fd = ::open(dev.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ::ioctl(fd, LOOP_CLR_FD, 0);
        ::close(fd);
      }
      ++l.loops;
    }
    if (mounts.empty() && loops.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return l;
}

ScratchDir::ScratchDir(const std::string& prefix, std::string base) {
  if (base.empty()) {
    const char* bin = std::getenv("VDISK_BINARY_DIR");
    base = bin ? std::string(bin) + "/test-tmp" : "/tmp";
    if (!fs::MakeDirs(base).ok()) base = "/tmp";
  }
  std::string tmpl = base + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) std::abort();
  path_ = buf.data();
}

ScratchDir::~ScratchDir() {
  CleanUnder(path_);
  if (std::getenv("VDISK_TEST_KEEP") == nullptr) (void)fs::RemoveAll(path_);  // keep for debugging
}

std::string BinaryPath(const std::string& rel) {
  const char* dir = std::getenv("VDISK_BINARY_DIR");
  return std::string(dir ? dir : ".") + "/" + rel;
}

DriverProcess::DriverProcess(std::vector<std::string> args, std::string log_path, std::string endpoint)
    : args_(std::move(args)), log_path_(std::move(log_path)), endpoint_(std::move(endpoint)) {}

DriverProcess::~DriverProcess() {
  if (pid_ > 0) Stop();
}

bool DriverProcess::Start(std::string* error) {
  const std::string bin = BinaryPath("csi/vdisk-csi");
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (auto& a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    _exit(127);
  }
  // Wait for the socket before connecting: a channel that fails early backs off for seconds.
  const std::string sock = endpoint_.starts_with("unix://") ? endpoint_.substr(7) : endpoint_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "vdisk-csi exited at start-up:\n" + Log();
      return false;
    }
    if (::access(sock.c_str(), F_OK) == 0) {
      auto client = CsiClient::Create(endpoint_, std::chrono::seconds(120));
      if (!client.ok()) {
        *error = std::string(client.status().message());
        return false;
      }
      client_ = std::move(*client);
      if (client_->Probe().ok()) return true;
      client_.reset();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *error = "vdisk-csi did not answer Probe within 20 s:\n" + Log();
  Kill();
  return false;
}

int DriverProcess::Stop() {
  if (pid_ <= 0) return -1;
  client_.reset();  // as a CO's connection would go away; StartDriver() makes a new one
  ::kill(pid_, SIGTERM);
  int st = 0;
  for (int i = 0; i < 300; ++i) {
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      CheckSanitizerReports();
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Kill();
  return -1;
}

bool DriverProcess::Exited(std::string* how) {
  int st = 0;
  if (pid_ <= 0 || ::waitpid(pid_, &st, WNOHANG) != pid_) return false;
  pid_ = -1;
  *how = WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st))
                       : "signal " + std::to_string(WTERMSIG(st)) + " (" + strsignal(WTERMSIG(st)) + ")";
  return true;
}

void DriverProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  CheckSanitizerReports();
}

void DriverProcess::CheckSanitizerReports() {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string log = ss.str();
  if (log.size() <= log_checked_) return;
  const size_t from = log_checked_;
  log_checked_ = log.size();
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                             "runtime error:"}) {
    size_t at = log.find(marker, from);
    if (at == std::string::npos) continue;
    const size_t begin = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at) + 1;
    ADD_FAILURE() << "vdisk-csi reported a sanitizer finding (" << log_path_ << "):\n"
                  << log.substr(begin, 6000);
    return;
  }
}

std::string DriverProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 8000 ? "..." + s.substr(s.size() - 8000) : s;
}

}  // namespace vdisk::csi::testing
