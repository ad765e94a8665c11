// An object (volume or snapshot) under construction in <root>/staging: an intent file whose
// flock marks the build as alive, and a directory that becomes the object's final directory by
// one rename when it is committed. If the builder dies, the kernel drops the flock and the next
// sweep removes the leftovers; if the build is abandoned, the destructor removes them.
// Not thread-safe (one owner).
#pragma once

#include <string>

#include "blockdev/local/file_lock.h"
#include "blockdev/local/layout.h"
#include "common/status.h"

namespace vdisk::blockdev::local {

class StagedBuild {
 public:
  // Under the pool lock: reserves `id` for `name` (`kind` 'v' volume or 's' snapshot) by
  // creating and locking its intent file and an empty staging directory.
  static StatusOr<std::unique_ptr<StagedBuild>> Start(const Layout& layout, char kind,
                                                     const std::string& id,
                                                     const std::string& name);
  ~StagedBuild();
  StagedBuild(const StagedBuild&) = delete;
  StagedBuild& operator=(const StagedBuild&) = delete;

  const std::string& dir() const { return dir_; }
  std::string image() const { return dir_ + "/" + kDiskImage; }

  // Under the pool lock: moves the staging directory to `final_dir`.
  Status MoveTo(const std::string& final_dir);
  // After the record is written: forgets the build (removes the intent, keeps the data).
  void Committed();

  // Intent file paths and the name they reserve, for sweeps: "<staging>/<kind>-<id>.intent".
  static std::string IntentPath(const Layout& layout, char kind, const std::string& id);
  static std::string DirOfIntent(const std::string& intent_path);
  // The name recorded in an intent file ("" if unreadable).
  static std::string NameInIntent(const std::string& intent_path);

 private:
  StagedBuild(std::string dir, std::string intent, FileLock lock)
      : dir_(std::move(dir)), intent_(std::move(intent)), lock_(std::move(lock)) {}
  std::string dir_, intent_;
  FileLock lock_;
  bool committed_ = false;
};

}  // namespace vdisk::blockdev::local
