// SIGINT / SIGTERM as a request to stop cleanly, for commands whose work can be cancelled
// (backup, restore, verify, prune, copy): the first signal sets the flag the pipeline polls,
// so it stops, releases what it holds (repository locks, open uploads) and keeps what makes a
// re-run resume; a second signal ends the process at once (the default action). Kubernetes sends
// SIGTERM to a Job's pod and SIGKILL after its grace period (30 s by default).
//
// One instance at a time (the handlers are process-wide); the destructor restores the previous
// handlers. Not thread-safe to construct; the flag is safe to read from any thread.
#pragma once

#include <atomic>
#include <string>

namespace vdisk::cli {

class CancelOnSignals {
 public:
  // `what` names the command in the message printed on stderr at the first signal.
  explicit CancelOnSignals(const std::string& what);
  ~CancelOnSignals();
  CancelOnSignals(const CancelOnSignals&) = delete;
  CancelOnSignals& operator=(const CancelOnSignals&) = delete;

  const std::atomic<bool>* flag() const;
};

// The signal that asked this process to stop (SIGINT / SIGTERM), 0 if none came.
int ReceivedStopSignal();

}  // namespace vdisk::cli
