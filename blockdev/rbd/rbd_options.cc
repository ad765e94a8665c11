#include "blockdev/rbd/rbd_options.h"

#include <cctype>
#include <charconv>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"

namespace vdisk::blockdev::rbd {

namespace {

const std::vector<std::pair<std::string, uint64_t>>& FeatureNames() {
  static const std::vector<std::pair<std::string, uint64_t>> names = {
      {"layering", RBD_FEATURE_LAYERING},
      {"exclusive-lock", RBD_FEATURE_EXCLUSIVE_LOCK},
      {"object-map", RBD_FEATURE_OBJECT_MAP},
      {"fast-diff", RBD_FEATURE_FAST_DIFF},
      {"deep-flatten", RBD_FEATURE_DEEP_FLATTEN},
      {"journaling", RBD_FEATURE_JOURNALING},
  };
  return names;
}

StatusOr<int> ParseDepth(const std::string& key, const std::string& v) {
  int out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || out < 0 || out > 64)
    return absl::InvalidArgumentError(
        absl::StrCat(key, "=", v, ": want an integer clone depth in [0, 64]"));
  return out;
}

Status CheckDepths(const VolumeOptions& o) {
  if (o.clone_soft_depth > o.clone_hard_depth)
    return absl::InvalidArgumentError(absl::StrCat("clone soft depth ", o.clone_soft_depth,
                                                   " is above the hard depth ",
                                                   o.clone_hard_depth));
  return Status();
}

Status CheckPool(const std::string& key, const std::string& pool) {
  if (!IsIdSafePoolName(pool))
    return absl::InvalidArgumentError(
        absl::StrCat(key, "='", pool, "': rados pool names used by vdisk must be [A-Za-z0-9_-]"));
  return Status();
}

}  // namespace

bool IsIdSafePoolName(const std::string& pool) {
  if (pool.empty() || pool.size() > 64) return false;
  for (char c : pool)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

StatusOr<uint64_t> ParseFeatures(const std::string& list) {
  uint64_t bits = 0;
  for (std::string item : std::vector<std::string>(absl::StrSplit(list, ',', absl::SkipWhitespace()))) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    bool found = false;
    for (const auto& [name, bit] : FeatureNames())
      if (name == item) {
        bits |= bit;
        found = true;
      }
    if (!found)
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown rbd image feature '", item,
          "' (known: layering, exclusive-lock, object-map, fast-diff, deep-flatten, journaling)"));
  }
  if (!(bits & RBD_FEATURE_LAYERING))
    return absl::InvalidArgumentError(
        "rbd image features must include layering (snapshots restore and clone as children)");
  if ((bits & RBD_FEATURE_OBJECT_MAP) && !(bits & RBD_FEATURE_EXCLUSIVE_LOCK))
    return absl::InvalidArgumentError("rbd feature object-map needs exclusive-lock");
  if ((bits & RBD_FEATURE_FAST_DIFF) && !(bits & RBD_FEATURE_OBJECT_MAP))
    return absl::InvalidArgumentError("rbd feature fast-diff needs object-map");
  if ((bits & RBD_FEATURE_JOURNALING) && !(bits & RBD_FEATURE_EXCLUSIVE_LOCK))
    return absl::InvalidArgumentError("rbd feature journaling needs exclusive-lock");
  return bits;
}

std::string FeaturesToString(uint64_t features) {
  std::vector<std::string> out;
  for (const auto& [name, bit] : FeatureNames())
    if (features & bit) out.push_back(name);
  return absl::StrJoin(out, ",");
}

StatusOr<RbdPoolOptions> ParseRbdPoolConfig(const PoolConfig& config, const Params& secrets) {
  RbdPoolOptions o;
  o.name = config.name.empty() ? "rbd" : config.name;
  Params opts = config.options;
  // "rbd:<rados-pool>?k=v&k=v" from a --pool flag arrives as spec.
  if (auto it = opts.find("spec"); it != opts.end()) {
    std::string spec = it->second;
    opts.erase(it);
    std::string query;
    if (auto q = spec.find('?'); q != std::string::npos) {
      query = spec.substr(q + 1);
      spec = spec.substr(0, q);
    }
    if (!spec.empty()) opts.emplace("rbd_pool", spec);
    for (const std::string& item : std::vector<std::string>(absl::StrSplit(query, '&', absl::SkipEmpty()))) {
      auto eq = item.find('=');
      if (eq == std::string::npos)
        return absl::InvalidArgumentError(
            absl::StrCat("rbd pool '", o.name, "': option '", item, "' wants k=v"));
      opts[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  std::string keyfile;
  for (const auto& [k, v] : opts) {
    if (k == "conf") {
      o.cluster.conf = v;
    } else if (k == "mon_host" || k == "monitors") {
      o.cluster.mon_host = v;
    } else if (k == "user" || k == "id") {
      o.cluster.user = v.starts_with("client.") ? v.substr(7) : v;
    } else if (k == "keyring") {
      o.cluster.keyring = v;
    } else if (k == "keyfile") {
      keyfile = v;
    } else if (k == "rbd_pool") {
      RETURN_IF_ERROR(CheckPool(k, v));
      o.defaults.rbd_pool = v;
    } else if (k == "data_pool") {
      o.defaults.data_pool = v;
    } else if (k == "image_features") {
      ASSIGN_OR_RETURN(o.defaults.features, ParseFeatures(v));
    } else if (k == "clone_soft_depth") {
      ASSIGN_OR_RETURN(o.defaults.clone_soft_depth, ParseDepth(k, v));
    } else if (k == "clone_hard_depth") {
      ASSIGN_OR_RETURN(o.defaults.clone_hard_depth, ParseDepth(k, v));
    } else if (k == "instance") {
      if (!IsIdSafePoolName(v))
        return absl::InvalidArgumentError("rbd pool option instance= wants [A-Za-z0-9_-]");
      o.instance = v;
    } else if (k == "connect_timeout") {
      int t = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), t);
      if (ec != std::errc() || p != v.data() + v.size() || t < 1 || t > 600)
        return absl::InvalidArgumentError("rbd pool option connect_timeout= wants 1..600 seconds");
      o.cluster.connect_timeout_s = t;
    } else if (k == "op_timeout") {
      int t = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), t);
      if (ec != std::errc() || p != v.data() + v.size() || t < 0 || t > 86400)
        return absl::InvalidArgumentError(
            "rbd pool option op_timeout= wants 0..86400 seconds (0: wait for ever)");
      o.cluster.op_timeout_s = t;
    } else if (k == "abandon_after") {
      int t = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), t);
      if (ec != std::errc() || p != v.data() + v.size() || t < 1 || t > 86400)
        return absl::InvalidArgumentError("rbd pool option abandon_after= wants 1..86400 seconds");
      o.abandon_after_s = t;
    } else if (k == "rbd_cache") {
      if (v != "true" && v != "false")
        return absl::InvalidArgumentError("rbd pool option rbd_cache= wants true or false");
      o.cluster.config["rbd_cache"] = v;
    } else if (k == "diff") {
      if (v == "auto") o.diff = DiffMode::kAuto;
      else if (v == "exact") o.diff = DiffMode::kExact;
      else if (v == "object") o.diff = DiffMode::kWholeObject;
      else return absl::InvalidArgumentError("rbd pool option diff= wants auto, exact or object");
    } else if (k == "key") {
      return absl::InvalidArgumentError(absl::StrCat(
          "rbd pool '", o.name, "': a cephx key does not belong in the pool config; use "
          "keyring=, keyfile= or the CSI secrets userID/userKey"));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("rbd pool '", o.name, "': unknown option '", k, "'"));
    }
  }
  RETURN_IF_ERROR(CheckDepths(o.defaults));
  if (o.cluster.conf.empty() && o.cluster.mon_host.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        "rbd pool '", o.name, "': set the cluster with conf=<ceph.conf> and/or mon_host="));
  if (!keyfile.empty()) {
    auto key = fs::ReadFile(keyfile);
    if (!key.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("rbd pool '", o.name, "': cannot read keyfile ", keyfile, ": ",
                       std::string(key.status().message())));
    std::string k = *key;
    while (!k.empty() && (k.back() == '\n' || k.back() == ' ')) k.pop_back();
    o.cluster.key = k;
  }
  // The pool's own identity is a named user with its key; never half of one (ceph.conf's
  // [client] sections would supply the rest, and with it whatever identity they name).
  const bool has_key_source = !o.cluster.key.empty() || !o.cluster.keyring.empty();
  if (!o.cluster.user.empty() && !has_key_source)
    return absl::InvalidArgumentError(absl::StrCat(
        "rbd pool '", o.name, "': user=", o.cluster.user, " needs keyring= or keyfile= (vdisk never takes "
        "a key from ceph.conf)"));
  if (o.cluster.user.empty() && has_key_source)
    return absl::InvalidArgumentError(absl::StrCat(
        "rbd pool '", o.name, "': keyring=/keyfile= need user= (the cephx identity the key belongs to)"));
  // CSI secrets win over the configured identity.
  auto id = secrets.find("userID");
  auto key = secrets.find("userKey");
  if (id != secrets.end() || key != secrets.end()) {
    if (id == secrets.end() || key == secrets.end() || id->second.empty() || key->second.empty())
      return absl::InvalidArgumentError(
          "rbd: CSI secrets must hold both userID and userKey (non-empty)");
    o.cluster.user = id->second.starts_with("client.") ? id->second.substr(7) : id->second;
    o.cluster.key = key->second;
    o.cluster.keyring.clear();
  } else if (o.cluster.user.empty()) {
    // Neither: refuse rather than connect as whatever default identity ceph.conf names.
    return absl::UnauthenticatedError(absl::StrCat(
        "rbd pool '", o.name, "' has no identity of its own (user= with keyring= or keyfile=) and this call "
        "carries no CSI secrets (userID, userKey): give the StorageClass the secret for this operation "
        "(csi.storage.k8s.io/provisioner-secret-name, node-stage-secret-name, controller-expand-secret-name; "
        "snapshotter-secret-name in the VolumeSnapshotClass) or give the pool an identity"));
  }
  return o;
}

StatusOr<VolumeOptions> ParseVolumeParams(const VolumeOptions& defaults, const Params& params) {
  VolumeOptions o = defaults;
  bool soft_given = false;
  for (const auto& [k, v] : params) {
    if (k == "pool" || k.find('/') != std::string::npos) continue;
    if (k == "rbdPool") {
      RETURN_IF_ERROR(CheckPool(k, v));
      o.rbd_pool = v;
    } else if (k == "dataPool") {
      o.data_pool = v;
    } else if (k == "imageFeatures") {
      ASSIGN_OR_RETURN(o.features, ParseFeatures(v));
    } else if (k == "cloneSoftDepth") {
      ASSIGN_OR_RETURN(o.clone_soft_depth, ParseDepth(k, v));
      soft_given = true;
    } else if (k == "cloneHardDepth") {
      ASSIGN_OR_RETURN(o.clone_hard_depth, ParseDepth(k, v));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown StorageClass parameter '", k,
          "' for an rbd pool (known: rbdPool, dataPool, imageFeatures, cloneSoftDepth, "
          "cloneHardDepth)"));
    }
  }
  // A hard limit below the default soft one lowers the soft one with it.
  if (!soft_given && o.clone_soft_depth > o.clone_hard_depth) o.clone_soft_depth = o.clone_hard_depth;
  RETURN_IF_ERROR(CheckDepths(o));
  return o;
}

}  // namespace vdisk::blockdev::rbd
