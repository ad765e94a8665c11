// The host where tgtd runs and the LUNs' backing files live, reached by running commands there.
//
// Every operation is one shell command line run through a command prefix: an argv that takes the
// command line as its last argument. {"/bin/sh", "-c"} runs it on this host (the Cinder model:
// the controller beside the target); {"ssh", "-o", "BatchMode=yes", "storage-host"} runs it on
// another (democratic-csi style, no agent needed there — only tgtadm and coreutils). Words are
// shell-quoted here, so paths and names are never interpreted by a shell.
//
// Errors: a program that exits non-zero becomes a Status from its stderr: "No space left" ->
// RESOURCE_EXHAUSTED, "No such file" -> NOT_FOUND, "not supported" / "Invalid cross-device" ->
// UNIMPLEMENTED, ssh's 255 -> UNAVAILABLE, else INTERNAL; words marked secret are replaced by
// "***" in every message. Thread-safe (each call is its own process).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace vdisk::blockdev::iscsi {

class TargetHost {
 public:
  explicit TargetHost(std::vector<std::string> prefix, int timeout_ms = 120000)
      : prefix_(std::move(prefix)), timeout_ms_(timeout_ms) {}

  // "local" -> {"/bin/sh", "-c"}; anything else is split on spaces ("ssh -o BatchMode=yes h").
  static std::vector<std::string> ParsePrefix(const std::string& spec);
  const std::vector<std::string>& prefix() const { return prefix_; }

  // Runs the words as one command; returns its stdout. Words at the indexes in `secret` never
  // appear in messages.
  StatusOr<std::string> Run(const std::vector<std::string>& words, const std::string& stdin_data = "",
                            const std::set<size_t>& secret = {}) const;
  // Runs a command line that is already a shell script (trusted text built by this backend).
  StatusOr<std::string> RunScript(const std::string& script, const std::string& stdin_data = "") const;

  // Files on the host.
  Status MakeDirs(const std::string& dir) const;
  // Replaces `path` atomically and durably (temp file, sync, rename, sync dir) with mode 0600.
  Status WriteFileAtomic(const std::string& path, const std::string& content) const;
  // nullopt if the file does not exist.
  StatusOr<std::optional<std::string>> ReadFile(const std::string& path) const;
  // A sparse file of `size` bytes; with `preallocate` every block is reserved (RESOURCE_EXHAUSTED
  // when it does not fit). ALREADY_EXISTS if the path exists.
  Status CreateFile(const std::string& path, uint64_t size, bool preallocate) const;
  Status Resize(const std::string& path, uint64_t size) const;
  // A reflink copy (O(1), shares blocks); UNIMPLEMENTED where the file system cannot.
  Status Reflink(const std::string& from, const std::string& to) const;
  // A sparse full copy on the host (no reflink), then synced.
  Status CopySparse(const std::string& from, const std::string& to) const;
  Status Remove(const std::string& path) const;  // OK if missing
  // Names in `dir` ending with `suffix` (without it), sorted; empty if the directory is missing.
  StatusOr<std::vector<std::string>> List(const std::string& dir, const std::string& suffix) const;
  struct FsSpace {
    uint64_t total_bytes = 0, available_bytes = 0;
  };
  StatusOr<FsSpace> Space(const std::string& dir) const;
  // Reflink works in `dir` (tries it on two scratch files).
  StatusOr<bool> ProbeReflink(const std::string& dir) const;

 private:
  StatusOr<std::string> Exec(const std::string& line, const std::string& shown, const std::string& stdin_data) const;
  std::vector<std::string> prefix_;
  int timeout_ms_;
};

}  // namespace vdisk::blockdev::iscsi
