// Boots the test guest (tests/env/guest.sh) under QEMU/TCG with a vhost-user-blk disk and
// reads its serial console. The QEMU process is a child of the test; the destructor kills it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace vdisk::testing {

inline std::string SourceDir() {
  const char* s = std::getenv("VDISK_SOURCE_DIR");
  return s ? s : ".";
}
inline std::string BinaryDir() {
  const char* s = std::getenv("VDISK_BINARY_DIR");
  return s ? s : ".";
}
// Where the `guest` CTest fixture built the kernel and initramfs.
inline std::string GuestDir() { return BinaryDir() + "/test-env/guest"; }

class QemuGuest {
 public:
  struct Options {
    std::string script;       // guest script (runs as /test.sh)
    std::string socket;       // vhost-user socket
    unsigned cpus = 1;
    unsigned queues = 1;
    std::string mem = "256M";
    std::string work_dir;     // where the combined initrd goes
    unsigned reconnect = 0;   // chardev reconnect=<seconds>: survive a back-end restart (0: off)
  };

  ~QemuGuest() { Kill(); }

  // Builds the initrd and starts QEMU. Returns an error message, empty on success.
  std::string Start(const Options& o) {
    std::string initrd = o.work_dir + "/initrd-" + std::to_string(::getpid()) + "-" +
                         std::to_string(counter_++) + ".cpio.gz";
    std::string cmd = SourceDir() + "/tests/env/guest.sh initrd " + GuestDir() + " " + o.script +
                      " " + initrd;
    if (std::system(cmd.c_str()) != 0) return "guest.sh initrd failed: " + cmd;
    std::vector<std::string> args = {
        "qemu-system-x86_64", "-accel", "tcg", "-nodefaults", "-display", "none", "-no-reboot",
        // maxcpus >= 2: QEMU 7.2's TCG drops the guest's memory barriers when only one vCPU
        // can exist, and the guest then misses completions (docs/vhost.md, "Guest stalls").
        "-m", o.mem, "-smp",
        std::to_string(o.cpus) + ",maxcpus=" + std::to_string(std::max(o.cpus, 2u)),
        "-object", "memory-backend-memfd,id=mem0,size=" + o.mem + ",share=on",
        "-machine", "q35,memory-backend=mem0",
        "-kernel", GuestDir() + "/vmlinuz", "-initrd", initrd,
        "-append", "console=ttyS0 panic=-1 quiet loglevel=3",
        "-serial", "stdio", "-monitor", "none",
        "-chardev", "socket,id=c0,path=" + o.socket +
                        (o.reconnect > 0 ? ",reconnect=" + std::to_string(o.reconnect) : ""),
        "-device", "vhost-user-blk-pci,chardev=c0,num-queues=" + std::to_string(o.queues)};
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
    initrd_ = initrd;
    return pid_ > 0 ? "" : "fork failed";
  }

  // Reads console output until a line containing `marker` appears (true) or QEMU exits /
  // the timeout passes (false). Everything read is kept in output().
  bool WaitFor(const std::string& marker, int timeout_s = 180) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
      if (output_.find(marker, scan_from_) != std::string::npos) {
        scan_from_ = output_.find(marker, scan_from_) + marker.size();
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long>(left, 1000))) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) {
        ::close(fd_);
        fd_ = -1;
        continue;
      }
      output_.append(buf, static_cast<size_t>(n));
    }
  }

  // Waits for QEMU to exit by itself; returns its exit status or -1 on timeout.
  int Wait(int timeout_s = 60) {
    WaitFor("\x01never\x01", timeout_s);  // drain the console until EOF or timeout
    for (int i = 0; i < timeout_s * 10 && pid_ > 0; i++) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        Cleanup();
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(100000);
    }
    return -1;
  }

  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    Cleanup();
  }

  const std::string& output() const { return output_; }
  // The value printed on a console line "<key>=<value>" (last occurrence), or "".
  std::string Value(const std::string& key) const {
    size_t pos = output_.rfind(key + "=");
    if (pos == std::string::npos) return "";
    size_t start = pos + key.size() + 1;
    size_t end = output_.find_first_of("\r\n", start);
    return output_.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }

 private:
  void Cleanup() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!initrd_.empty()) {
      ::unlink(initrd_.c_str());
      initrd_.clear();
    }
  }
  static inline int counter_ = 0;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string initrd_;
  std::string output_;
  size_t scan_from_ = 0;
};

// Boots the guest with tests/vhost/guest/csi_attach.sh on the vhost-user `socket` (a CSI
// publish): the script checks the disk's size, writes Pattern(7) at 2..6 MiB and reads it back.
// Returns "" when QEMU exits 0 within `timeout_s` with size=`size_bytes`, write=ok and
// check=ok; otherwise what differed, followed by the guest's console output.
inline std::string RunCsiAttachGuest(const std::string& socket, const std::string& work_dir,
                                     uint64_t size_bytes, int timeout_s = 300) {
  QemuGuest g;
  QemuGuest::Options o;
  o.script = SourceDir() + "/tests/vhost/guest/csi_attach.sh";
  o.socket = socket;
  o.work_dir = work_dir;
  if (std::string e = g.Start(o); !e.empty()) return e;
  std::string bad;
  if (int rc = g.Wait(timeout_s); rc != 0) bad += "exit " + std::to_string(rc) + "; ";
  if (g.Value("size") != std::to_string(size_bytes)) bad += "size=" + g.Value("size") + "; ";
  if (g.Value("write") != "ok") bad += "write=" + g.Value("write") + "; ";
  if (g.Value("check") != "ok") bad += "check=" + g.Value("check") + "; ";
  return bad.empty() ? "" : bad + "guest output:\n" + g.output();
}

}  // namespace vdisk::testing
