// Test helpers for the CSI integration tests: a scratch directory that cleans up after itself
// (mounts, loop devices, files), and the real `vdisk-csi` binary run as a child process.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "csi/client.h"

namespace vdisk::csi::testing {

// mkdtemp under `base` (default: $VDISK_BINARY_DIR/test-tmp, the build disk — /tmp may be a
// tmpfs — else /tmp); the destructor unmounts everything below it, detaches loop devices whose
// backing file is below it, and removes it.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix, std::string base = "");
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Unmounts all mounts at or below `dir` (deepest first) and detaches loop devices backed by files
// below it. Returns how many of each it had to clean (a clean test leaves 0).
struct Leftovers {
  int mounts = 0;
  int loops = 0;
};
Leftovers CleanUnder(const std::string& dir);
Leftovers FindUnder(const std::string& dir);

// Path of a built binary (VDISK_BINARY_DIR + rel).
std::string BinaryPath(const std::string& rel);

class DriverProcess {
 public:
  // `args` are passed after the binary name; the log goes to `log_path`.
  DriverProcess(std::vector<std::string> args, std::string log_path, std::string endpoint);
  ~DriverProcess();

  // Starts the process and waits (up to 20 s) until Probe answers. False (with the log in
  // `error`) if it exits or never answers.
  bool Start(std::string* error);
  // SIGTERM and wait; returns the exit status (or -1).
  int Stop();
  // SIGKILL (a crash).
  void Kill();
  bool running() const { return pid_ > 0; }
  // True (reaped, with "exit N" / "signal N" in *how) if the process died on its own.
  bool Exited(std::string* how);
  std::string Log() const;
  CsiClient& client() { return *client_; }

 private:
  // Fails the running test with the report if the driver's log gained an ASan / UBSan / LSan /
  // TSan report since the last check (a sanitizer build's driver reports into its log, and a
  // leak report only changes its exit code, which callers may not look at).
  void CheckSanitizerReports();
  size_t log_checked_ = 0;
  std::vector<std::string> args_;
  std::string log_path_, endpoint_;
  pid_t pid_ = -1;
  std::unique_ptr<CsiClient> client_;
};

}  // namespace vdisk::csi::testing
