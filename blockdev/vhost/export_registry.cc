#include "blockdev/vhost/export_registry.h"

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::vhost {

ExportRegistry::~ExportRegistry() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [path, e] : exports_) e->exp->Stop();
  exports_.clear();
}

Status ExportRegistry::Publish(const std::string& volume_key, const VolumeOpener& open,
                               const ExportOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = exports_.find(options.socket_path);
  if (it != exports_.end()) {
    if (it->second->volume_key == volume_key && it->second->read_only == options.read_only) {
      return Status();
    }
    return absl::AlreadyExistsError(absl::StrCat(
        "vhost socket ", options.socket_path, " already exports volume ", it->second->volume_key,
        it->second->read_only ? " (read-only)" : " (read-write)"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Device> device, open(options.read_only));
  ASSIGN_OR_RETURN(auto exp, Export::Start(std::shared_ptr<Device>(std::move(device)), options));
  auto entry = std::make_shared<Entry>();
  entry->volume_key = volume_key;
  entry->read_only = options.read_only;
  entry->exp = std::move(exp);
  exports_[options.socket_path] = std::move(entry);
  return Status();
}

Status ExportRegistry::Unpublish(const std::string& socket_path) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = exports_.find(socket_path);
    if (it == exports_.end()) return Status();
    entry = it->second;
    exports_.erase(it);
  }
  entry->exp->Stop();  // waits for in-flight requests; outside the lock
  return Status();
}

StatusOr<uint64_t> ExportRegistry::Resize(const std::string& volume_key, const VolumeOpener& open) {
  std::lock_guard<std::mutex> lock(mu_);
  bool found = false;
  uint64_t size = 0;
  for (auto& [path, e] : exports_) {
    if (e->volume_key != volume_key) continue;
    found = true;
    ASSIGN_OR_RETURN(std::unique_ptr<Device> device, open(e->read_only));
    ASSIGN_OR_RETURN(size, e->exp->Resize(std::shared_ptr<Device>(std::move(device))));
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("volume ", volume_key, " has no vhost export here"));
  }
  return size;
}

bool ExportRegistry::Contains(const std::string& socket_path) const {
  std::lock_guard<std::mutex> lock(mu_);
  return exports_.count(socket_path) > 0;
}

std::optional<PublishedExport> ExportRegistry::Find(const std::string& socket_path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = exports_.find(socket_path);
  if (it == exports_.end()) return std::nullopt;
  return PublishedExport{it->second->volume_key, socket_path, it->second->read_only, it->second->exp->stats()};
}

std::vector<PublishedExport> ExportRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PublishedExport> out;
  for (const auto& [path, e] : exports_) {
    out.push_back(PublishedExport{e->volume_key, path, e->read_only, e->exp->stats()});
  }
  return out;
}

}  // namespace vdisk::blockdev::vhost
