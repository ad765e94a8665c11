#include "backup/pipeline/kube_manifests.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace vdisk::backup {

namespace stdfs = std::filesystem;

StatusOr<KubeObject> ParseKubeManifest(const std::string& file, const std::string& yaml) {
  KubeObject k;
  k.file = file;
  k.yaml = yaml;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not valid YAML: ", e.what()));
  }
  bool first = true;
  for (const auto& d : docs) {
    if (d.IsNull()) continue;
    if (!d.IsMap())
      return absl::InvalidArgumentError(absl::StrCat(file, ": a Kubernetes manifest must be a mapping"));
    if (first) {
      first = false;
      try {
        if (d["kind"]) k.kind = d["kind"].as<std::string>();
        if (d["metadata"] && d["metadata"]["name"]) k.name = d["metadata"]["name"].as<std::string>();
        if (d["metadata"] && d["metadata"]["namespace"])
          k.namespace_ = d["metadata"]["namespace"].as<std::string>();
      } catch (const YAML::Exception& e) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": ", e.what()));
      }
    }
  }
  if (first) return absl::InvalidArgumentError(absl::StrCat(file, ": no YAML documents"));
  return k;
}

StatusOr<std::vector<KubeObject>> LoadKubeManifests(const std::vector<std::string>& paths) {
  std::vector<KubeObject> out;
  for (const auto& path : paths) {
    std::error_code ec;
    if (!stdfs::exists(path, ec))
      return absl::NotFoundError(absl::StrCat("Kubernetes manifest path ", path, " does not exist"));
    std::vector<std::string> files;
    if (stdfs::is_directory(path, ec)) {
      for (const auto& e : stdfs::directory_iterator(path, ec)) {
        if (!e.is_regular_file()) continue;
        std::string ext = e.path().extension().string();
        if (ext == ".yaml" || ext == ".yml" || ext == ".json") files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(path);
    }
    for (const auto& f : files) {
      ASSIGN_OR_RETURN(std::string text, fs::ReadFile(f));
      ASSIGN_OR_RETURN(KubeObject k, ParseKubeManifest(stdfs::path(f).filename().string(), text));
      out.push_back(std::move(k));
    }
  }
  return out;
}

StatusOr<std::vector<std::string>> WriteKubeManifests(const std::vector<KubeObject>& objects,
                                                      const std::string& dir) {
  RETURN_IF_ERROR(fs::MakeDirs(dir));
  std::vector<std::string> written;
  std::set<std::string> used;
  for (const auto& k : objects) {
    std::string name = stdfs::path(k.file).filename().string();
    if (name.empty() || name == "." || name == "..") name = "manifest.yaml";
    std::string candidate = name;
    for (int n = 1; used.contains(candidate); ++n) candidate = absl::StrCat(n, "-", name);
    used.insert(candidate);
    ASSIGN_OR_RETURN(std::string path, fs::JoinUnder(dir, candidate));
    RETURN_IF_ERROR(fs::WriteFileAtomic(path, k.yaml, 0644));
    written.push_back(path);
  }
  return written;
}

}  // namespace vdisk::backup
