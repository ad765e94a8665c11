#include "blockdev/local/staged_build.h"

#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace vdisk::blockdev::local {

std::string StagedBuild::IntentPath(const Layout& layout, char kind, const std::string& id) {
  return absl::StrCat(layout.staging_dir(), "/", std::string(1, kind), "-", id, ".intent");
}

std::string StagedBuild::DirOfIntent(const std::string& intent_path) {
  return intent_path.substr(0, intent_path.size() - std::string(".intent").size());
}

std::string StagedBuild::NameInIntent(const std::string& intent_path) {
  auto text = fs::ReadFile(intent_path);
  if (!text.ok()) return "";
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string())
    return "";
  return j["name"].get<std::string>();
}

StatusOr<std::unique_ptr<StagedBuild>> StagedBuild::Start(const Layout& layout, char kind,
                                                         const std::string& id,
                                                         const std::string& name) {
  std::string intent = IntentPath(layout, kind, id);
  ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(intent, /*create=*/true));
  nlohmann::json j = {{"kind", std::string(1, kind)}, {"id", id}, {"name", name},
                      {"pid", ::getpid()}};
  std::string text = j.dump();
  if (::pwrite(lock.fd(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    Status s = LastErrnoStatus(absl::StrCat("write ", intent));
    ::unlink(intent.c_str());
    return s;
  }
  std::unique_ptr<StagedBuild> build(new StagedBuild(DirOfIntent(intent), intent, std::move(lock)));
  if (::mkdir(build->dir().c_str(), kind == 'v' ? 0755 : 0700) != 0)
    return LastErrnoStatus(absl::StrCat("mkdir ", build->dir()));  // the destructor cleans up
  return build;
}

StagedBuild::~StagedBuild() {
  if (committed_) return;
  fs::RemoveAll(dir_).IgnoreError();
  ::unlink(intent_.c_str());
}

Status StagedBuild::MoveTo(const std::string& final_dir) {
  if (::rename(dir_.c_str(), final_dir.c_str()) != 0)
    return LastErrnoStatus(absl::StrCat("rename ", dir_, " -> ", final_dir));
  return Status();
}

void StagedBuild::Committed() {
  committed_ = true;
  ::unlink(intent_.c_str());
}

}  // namespace vdisk::blockdev::local
