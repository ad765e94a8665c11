// Running a helper program (tgtadm, cp, iscsiadm, ...) and collecting its output.
//
// Run() starts argv[0] (looked up in PATH) with posix_spawn — safe in a multi-threaded process —
// feeds `stdin_data` to it, collects stdout and stderr, and waits at most `timeout_ms` (then the
// child is killed with SIGKILL and the result is DEADLINE_EXCEEDED). A program that cannot be
// started is NOT_FOUND. The exit status is returned as data, never as an error: callers decide
// what a non-zero exit means. Thread-safe; nothing is logged here (arguments may hold secrets).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace vdisk {

struct ProcessResult {
  int exit_code = -1;     // -1 if killed by a signal
  int signal = 0;         // the signal that ended it, 0 if it exited
  std::string out, err;
  bool ok() const { return exit_code == 0; }
};

StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                   const std::string& stdin_data = "", int timeout_ms = 60000);

// POSIX shell quoting of one word ('...' with embedded quotes escaped), for command lines that
// go through a shell or a remote command prefix (ssh).
std::string ShellQuote(const std::string& word);

}  // namespace vdisk
