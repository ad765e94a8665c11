#include "blockdev/nfs/nfs_options.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vdisk::blockdev::nfs {

namespace {

Status Bad(const std::string& pool, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("nfs pool '", pool, "': ", what));
}

StatusOr<int> ParseInt(const std::string& pool, const std::string& key, const std::string& v,
                       int min, int max) {
  int n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < min || n > max)
    return Bad(pool, absl::StrCat(key, " must be a number in [", min, ", ", max, "], not '", v,
                                  "'"));
  return n;
}

bool ValidMountOption(const std::string& o) {
  if (o.empty()) return false;
  for (char c : o)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '=' || c == ':' || c == '/' || c == '-'))
      return false;
  return true;
}

// "--pool nfs://server/export?k=v&..." arrives as spec "//server/export?k=v".
Status ExpandSpec(const std::string& pool, Params* opts) {
  auto it = opts->find("spec");
  if (it == opts->end()) return Status();
  std::string spec = it->second;
  opts->erase(it);
  if (spec.starts_with("//")) spec = spec.substr(2);
  std::string query;
  if (auto q = spec.find('?'); q != std::string::npos) {
    query = spec.substr(q + 1);
    spec = spec.substr(0, q);
  }
  auto slash = spec.find('/');
  if (slash == std::string::npos || slash == 0)
    return Bad(pool, absl::StrCat("--pool nfs://<server>/<export>[?options] expected, got '",
                                  it->second, "'"));
  opts->emplace("server", spec.substr(0, slash));
  opts->emplace("export", spec.substr(slash));
  for (const std::string& item :
       std::vector<std::string>(absl::StrSplit(query, '&', absl::SkipEmpty()))) {
    auto eq = item.find('=');
    if (eq == std::string::npos) return Bad(pool, absl::StrCat("option '", item, "' wants k=v"));
    (*opts)[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return Status();
}

}  // namespace

StatusOr<NfsPoolOptions> ParseNfsPoolConfig(const PoolConfig& config) {
  NfsPoolOptions o;
  o.name = config.name.empty() ? "nfs" : config.name;
  Params opts = config.options;
  RETURN_IF_ERROR(ExpandSpec(o.name, &opts));
  for (const auto& [k, v] : opts) {
    if (k == "server") {
      o.target.server = v;
    } else if (k == "export") {
      o.target.export_path = v.size() > 1 && v.back() == '/' ? v.substr(0, v.size() - 1) : v;
    } else if (k == "dir") {
      o.dir = v.empty() ? "/" : v;
    } else if (k == "nfsport" || k == "nfs_port") {
      ASSIGN_OR_RETURN(int p, ParseInt(o.name, k, v, 1, 65535));
      o.target.nfs_port = static_cast<uint16_t>(p);
    } else if (k == "mountport" || k == "mount_port") {
      ASSIGN_OR_RETURN(int p, ParseInt(o.name, k, v, 1, 65535));
      o.target.mount_port = static_cast<uint16_t>(p);
    } else if (k == "uid") {
      ASSIGN_OR_RETURN(o.target.uid, ParseInt(o.name, k, v, 0, 0x7fffffff));
    } else if (k == "gid") {
      ASSIGN_OR_RETURN(o.target.gid, ParseInt(o.name, k, v, 0, 0x7fffffff));
    } else if (k == "local_path") {
      if (!v.empty() && v.front() != '/')
        return Bad(o.name, absl::StrCat("local_path must be absolute, not '", v, "'"));
      o.local_path = v.size() > 1 && v.back() == '/' ? v.substr(0, v.size() - 1) : v;
    } else if (k == "reflink") {
      if (v == "auto") o.reflink = NfsPoolOptions::Reflink::kAuto;
      else if (v == "on") o.reflink = NfsPoolOptions::Reflink::kOn;
      else if (v == "off") o.reflink = NfsPoolOptions::Reflink::kOff;
      else return Bad(o.name, absl::StrCat("reflink must be auto|on|off, not '", v, "'"));
    } else if (k == "mount_options") {
      for (const std::string& m : std::vector<std::string>(absl::StrSplit(v, ',', absl::SkipEmpty())))
        if (!ValidMountOption(m))
          return Bad(o.name, absl::StrCat("mount option '", m, "' is not a plain option"));
      o.mount_options = v;
    } else if (k == "node_mount_dir") {
      if (v.empty() || v.front() != '/')
        return Bad(o.name, absl::StrCat("node_mount_dir must be absolute, not '", v, "'"));
      o.node_mount_dir = v;
    } else if (k == "timeout") {
      ASSIGN_OR_RETURN(o.timeout_s, ParseInt(o.name, k, v, 1, 3600));
    } else if (k == "abandon_after") {
      ASSIGN_OR_RETURN(o.abandon_after_s, ParseInt(o.name, k, v, 1, 86400));
    } else {
      return Bad(o.name, absl::StrCat(
                             "unknown option '", k,
                             "' (known: server, export, dir, nfsport, mountport, uid, gid, "
                             "local_path, reflink, mount_options, node_mount_dir, timeout, "
                             "abandon_after)"));
    }
  }
  if (o.target.server.empty()) return Bad(o.name, "server is required");
  if (o.target.export_path.empty()) return Bad(o.name, "export is required");
  RETURN_IF_ERROR(Annotate(ValidateTarget(o.target), absl::StrCat("nfs pool '", o.name, "'")));
  if (o.dir != "/") {
    if (o.dir.back() == '/') o.dir.pop_back();
    NfsTarget probe{o.target.server, o.dir};  // the same path rules as an export
    RETURN_IF_ERROR(Annotate(ValidateTarget(probe), absl::StrCat("nfs pool '", o.name, "' dir")));
  }
  if (o.reflink == NfsPoolOptions::Reflink::kOn && o.local_path.empty())
    return Bad(o.name, "reflink=on needs local_path (the export's root as this host sees it)");
  return o;
}

StatusOr<NfsVolumeParams> ParseNfsVolumeParams(const Params& params) {
  NfsVolumeParams p;
  for (const auto& [k, v] : params) {
    if (k.find('/') != std::string::npos || k == "pool") continue;
    if (k == "preallocation") {
      if (v == "full") p.preallocate = true;
      else if (v != "none")
        return absl::InvalidArgumentError(
            absl::StrCat("preallocation must be 'none' or 'full', not '", v, "'"));
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown StorageClass parameter '", k, "' for an nfs pool (known: preallocation)"));
  }
  return p;
}

std::vector<std::string> NodeMountCommand(const NfsPoolOptions& o, const std::string& path,
                                          const std::string& target, bool read_only) {
  std::vector<std::string> opts;
  bool has_port = false, has_mountport = false;
  for (const std::string& m :
       std::vector<std::string>(absl::StrSplit(o.mount_options, ',', absl::SkipEmpty()))) {
    if (m == "ro" || m == "rw") continue;  // decided per attachment
    has_port |= m.starts_with("port=");
    has_mountport |= m.starts_with("mountport=");
    opts.push_back(m);
  }
  if (o.target.nfs_port && !has_port) opts.push_back(absl::StrCat("port=", o.target.nfs_port));
  if (o.target.mount_port && !has_mountport)
    opts.push_back(absl::StrCat("mountport=", o.target.mount_port));
  opts.push_back(read_only ? "ro" : "rw");
  std::string source = absl::StrCat(o.target.server, ":", JoinPath(o.target.export_path, path));
  return {"mount", "-t", "nfs", "-o", absl::StrJoin(opts, ","), source, target};
}

}  // namespace vdisk::blockdev::nfs
