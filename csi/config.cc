#include "csi/config.h"

#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"
#include "common/fs.h"

namespace vdisk::csi {

namespace {

StatusOr<std::string> Scalar(const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) return absl::InvalidArgumentError(absl::StrCat("config: ", what, " must be a scalar"));
  return n.as<std::string>();
}

StatusOr<blockdev::PoolConfig> ParsePool(const YAML::Node& n, size_t index) {
  const std::string where = absl::StrCat("pools[", index, "]");
  if (!n.IsMap()) return absl::InvalidArgumentError(absl::StrCat("config: ", where, " must be a map"));
  blockdev::PoolConfig pc;
  for (const auto& kv : n) {
    const std::string key = kv.first.as<std::string>();
    if (key == "name") {
      ASSIGN_OR_RETURN(pc.name, Scalar(kv.second, where + ".name"));
    } else if (key == "kind") {
      ASSIGN_OR_RETURN(pc.kind, Scalar(kv.second, where + ".kind"));
    } else if (key == "options") {
      if (!kv.second.IsMap())
        return absl::InvalidArgumentError(absl::StrCat("config: ", where, ".options must be a map"));
      for (const auto& o : kv.second) {
        ASSIGN_OR_RETURN(pc.options[o.first.as<std::string>()],
                         Scalar(o.second, where + ".options." + o.first.as<std::string>()));
      }
    } else {
      ASSIGN_OR_RETURN(pc.options[key], Scalar(kv.second, where + "." + key));
    }
  }
  if (pc.kind.empty()) return absl::InvalidArgumentError(absl::StrCat("config: ", where, ".kind is required"));
  if (pc.name.empty()) pc.name = pc.kind;
  return pc;
}

}  // namespace

StatusOr<FileConfig> ParseConfig(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
  FileConfig cfg;
  if (root.IsNull()) return cfg;
  if (!root.IsMap()) return absl::InvalidArgumentError("config: top level must be a map");
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "driverName") {
        ASSIGN_OR_RETURN(cfg.driver_name, Scalar(v, key));
      } else if (key == "nodeId") {
        ASSIGN_OR_RETURN(cfg.node_id, Scalar(v, key));
      } else if (key == "endpoint") {
        ASSIGN_OR_RETURN(cfg.endpoint, Scalar(v, key));
      } else if (key == "role") {
        ASSIGN_OR_RETURN(cfg.role, Scalar(v, key));
      } else if (key == "stateDir") {
        ASSIGN_OR_RETURN(cfg.state_dir, Scalar(v, key));
      } else if (key == "vhostDir") {
        ASSIGN_OR_RETURN(cfg.vhost_dir, Scalar(v, key));
      } else if (key == "metricsAddress") {
        ASSIGN_OR_RETURN(cfg.metrics_address, Scalar(v, key));
      } else if (key == "healthInterval") {
        if (!v.IsScalar()) return absl::InvalidArgumentError("config: healthInterval must be a number of seconds");
        cfg.health_interval_s = v.as<int64_t>();
        if (*cfg.health_interval_s < 1 || *cfg.health_interval_s > 3600)
          return absl::InvalidArgumentError("config: healthInterval must be 1..3600 seconds");
      } else if (key == "topologyKey") {
        ASSIGN_OR_RETURN(cfg.topology_key, Scalar(v, key));
      } else if (key == "maxVolumesPerNode") {
        if (!v.IsScalar()) return absl::InvalidArgumentError("config: maxVolumesPerNode must be a number");
        cfg.max_volumes_per_node = v.as<int64_t>();
        if (*cfg.max_volumes_per_node < 0)
          return absl::InvalidArgumentError("config: maxVolumesPerNode must not be negative");
      } else if (key == "allowedPathRoots") {
        if (!v.IsSequence()) return absl::InvalidArgumentError("config: allowedPathRoots must be a list");
        std::vector<std::string> roots;
        for (const auto& r : v) {
          ASSIGN_OR_RETURN(std::string root, Scalar(r, "allowedPathRoots[]"));
          roots.push_back(root);
        }
        cfg.allowed_path_roots = roots;
      } else if (key == "pools") {
        if (!v.IsSequence()) return absl::InvalidArgumentError("config: pools must be a list");
        for (size_t i = 0; i < v.size(); ++i) {
          ASSIGN_OR_RETURN(blockdev::PoolConfig pc, ParsePool(v[i], i));
          cfg.pools.push_back(std::move(pc));
        }
      } else {
        return absl::InvalidArgumentError(absl::StrCat("config: unknown key '", key, "'"));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
  return cfg;
}

StatusOr<FileConfig> LoadConfigFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  auto cfg = ParseConfig(text);
  if (!cfg.ok()) return Annotate(cfg.status(), path);
  return cfg;
}

}  // namespace vdisk::csi
