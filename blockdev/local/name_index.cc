#include "blockdev/local/name_index.h"

#include <dirent.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::local {

namespace {

struct Entry {
  std::string name;
  std::string id;
};

StatusOr<Entry> ParseEntry(const std::string& path, const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string() ||
      !j.contains("id") || !j["id"].is_string())
    return absl::DataLossError(absl::StrCat("name index entry ", path, " is unreadable"));
  return Entry{j["name"].get<std::string>(), j["id"].get<std::string>()};
}

}  // namespace

std::string NameIndex::EntryPath(const std::string& name) const {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(), md);
  return absl::StrCat(dir_, "/",
                      absl::BytesToHexString(std::string(reinterpret_cast<char*>(md), sizeof md)),
                      ".json");
}

StatusOr<std::optional<std::string>> NameIndex::Lookup(const std::string& name) const {
  const std::string path = EntryPath(name);
  auto text = fs::ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return std::optional<std::string>();
    return text.status();
  }
  ASSIGN_OR_RETURN(Entry e, ParseEntry(path, *text));
  if (e.name != name)
    return absl::DataLossError(absl::StrCat("name index entry ", path, " holds another name"));
  return std::optional<std::string>(e.id);
}

Status NameIndex::Put(const std::string& name, const std::string& id) const {
  nlohmann::json j = {{"name", name}, {"id", id}};
  return fs::WriteFileAtomic(EntryPath(name), j.dump() + "\n", 0600);
}

Status NameIndex::Remove(const std::string& name, const std::string& id) const {
  auto current = Lookup(name);
  if (current.ok() && (!*current || **current != id)) return Status();  // not ours (any more)
  const std::string path = EntryPath(name);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return LastErrnoStatus(absl::StrCat("unlink ", path));
  return fs::SyncDir(dir_);
}

StatusOr<std::map<std::string, std::string>> NameIndex::ReadAll() const {
  std::map<std::string, std::string> out;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return LastErrnoStatus(absl::StrCat("opendir ", dir_));
  }
  std::vector<std::string> files;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.ends_with(".json")) files.push_back(std::move(n));
  }
  ::closedir(d);
  for (const auto& f : files) {
    const std::string path = dir_ + "/" + f;
    auto text = fs::ReadFile(path);
    if (!text.ok()) continue;  // removed meanwhile
    auto e = ParseEntry(path, *text);
    if (!e.ok() || EntryPath(e->name) != path) {
      spdlog::warn("local pool: removing bad name index entry {} (rebuilt from the records)",
                   path);
      ::unlink(path.c_str());
      continue;
    }
    out[e->name] = e->id;
  }
  return out;
}

}  // namespace vdisk::blockdev::local
