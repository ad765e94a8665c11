#include "backup/pipeline/pool_source.h"

#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace vdisk::backup {

StatusOr<SnapshotRef> ParseSnapshotRef(const std::string& ref) {
  if (ref.empty()) return absl::InvalidArgumentError("empty snapshot reference");
  constexpr std::string_view kPrefix = "v1.snap.";
  if (ref.starts_with(kPrefix)) {
    std::string rest = ref.substr(kPrefix.size());
    auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size())
      return absl::InvalidArgumentError(absl::StrCat("malformed CSI snapshot handle '", ref, "'"));
    return SnapshotRef{rest.substr(0, dot), rest.substr(dot + 1)};
  }
  return SnapshotRef{"", ref};
}

StatusOr<std::vector<blockdev::PoolConfig>> LoadPoolConfigs(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  std::vector<blockdev::PoolConfig> out;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap() || !root["pools"] || !root["pools"].IsSequence())
      return absl::InvalidArgumentError(absl::StrCat(path, ": no `pools:` list"));
    for (const auto& p : root["pools"]) {
      blockdev::PoolConfig c;
      if (!p.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, ": a pool entry is not a map"));
      for (const auto& kv : p) {
        const std::string key = kv.first.as<std::string>();
        if (key == "name") c.name = kv.second.as<std::string>();
        else if (key == "kind") c.kind = kv.second.as<std::string>();
        else if (key == "options" && kv.second.IsMap())
          for (const auto& o : kv.second) c.options[o.first.as<std::string>()] = o.second.as<std::string>();
        else if (kv.second.IsScalar()) c.options[key] = kv.second.as<std::string>();
      }
      if (c.kind.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": a pool without kind"));
      if (c.name.empty()) c.name = c.kind;
      out.push_back(std::move(c));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  return out;
}

StatusOr<blockdev::PoolConfig> ResolvePool(const std::string& pool_flag,
                                           const std::string& config_file,
                                           const std::string& name) {
  if (!pool_flag.empty()) {
    ASSIGN_OR_RETURN(blockdev::PoolConfig c, blockdev::ParsePoolFlag(pool_flag));
    if (!name.empty() && c.name != name && c.kind != name)
      return absl::InvalidArgumentError(
          absl::StrCat("the snapshot belongs to pool '", name, "' but --pool names '", c.name, "'"));
    return c;
  }
  if (config_file.empty())
    return absl::InvalidArgumentError("a pool snapshot needs --pool or --pool-config");
  ASSIGN_OR_RETURN(auto pools, LoadPoolConfigs(config_file));
  if (pools.empty()) return absl::InvalidArgumentError(absl::StrCat(config_file, " lists no pools"));
  if (name.empty()) return pools.front();
  for (auto& p : pools)
    if (p.name == name) return p;
  return absl::NotFoundError(absl::StrCat("no pool named '", name, "' in ", config_file));
}

}  // namespace vdisk::backup
