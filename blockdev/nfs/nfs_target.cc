#include "blockdev/nfs/nfs_target.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vdisk::blockdev::nfs {

namespace {

bool ValidHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Path characters that survive a libnfs URL unchanged (no escaping there) and cannot inject
// URL options or leave the export.
Status ValidatePath(const std::string& what, const std::string& path, bool allow_root) {
  if (path.empty() || path.front() != '/')
    return absl::InvalidArgumentError(absl::StrCat(what, " must be an absolute path, got '",
                                                   path, "'"));
  if (!allow_root && path == "/")
    return absl::InvalidArgumentError(absl::StrCat(what, " must not be '/'"));
  if (path.size() > 1 && path.back() == '/')
    return absl::InvalidArgumentError(absl::StrCat(what, " must not end in '/': '", path, "'"));
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '?' || c == '&' || c == '#' || c == '%' ||
        c == ' ' || c == '\\' || c == 0x7f)
      return absl::InvalidArgumentError(absl::StrCat(what, " '", path,
                                                     "' contains a character vdisk does not "
                                                     "pass to NFS ('?', '&', '#', '%', space, "
                                                     "control)"));
  }
  for (const std::string& part : std::vector<std::string>(absl::StrSplit(path, '/'))) {
    if (part == "." || part == "..")
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", path, "' must not contain '.' or '..' components"));
    if (part.empty()) continue;
  }
  if (path.find("//") != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' contains '//'"));
  return Status();
}

StatusOr<uint16_t> ParsePort(const std::string& what, const std::string& v) {
  uint32_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n == 0 || n > 65535)
    return absl::InvalidArgumentError(absl::StrCat(what, " must be a port 1..65535, got '", v,
                                                   "'"));
  return static_cast<uint16_t>(n);
}

StatusOr<int> ParseId(const std::string& what, const std::string& v) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < 0 || n > 0x7fffffff)
    return absl::InvalidArgumentError(absl::StrCat(what, " must be a number >= 0, got '", v, "'"));
  return static_cast<int>(n);
}

std::string Options(const NfsTarget& t, bool with_export, const std::string& export_path) {
  std::vector<std::string> o;
  if (with_export) o.push_back(absl::StrCat("export=", export_path));
  if (t.nfs_port) o.push_back(absl::StrCat("nfsport=", t.nfs_port));
  if (t.mount_port) o.push_back(absl::StrCat("mountport=", t.mount_port));
  if (t.uid >= 0) o.push_back(absl::StrCat("uid=", t.uid));
  if (t.gid >= 0) o.push_back(absl::StrCat("gid=", t.gid));
  return o.empty() ? "" : absl::StrCat("?", absl::StrJoin(o, "&"));
}

}  // namespace

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (name.empty()) return dir;
  if (dir.empty() || dir == "/") return name.front() == '/' ? name : "/" + name;
  return absl::StrCat(dir, name.front() == '/' ? "" : "/", name);
}

std::string NfsTarget::Describe() const {
  return absl::StrCat("nfs://", server, export_path, Options(*this, false, ""));
}

std::string NfsTarget::LibnfsUrl(const std::string& path) const {
  std::string full = export_path;
  if (!path.empty() && path != "/") full = JoinPath(export_path, path);
  // version=3: libnfs 4.0's NFSv4 client is not functional (writes > 2 KiB fail).
  std::string opts = Options(*this, false, "");
  return absl::StrCat("nfs://", server, full, opts.empty() ? "?" : opts + "&", "version=3");
}

Status ValidateTarget(const NfsTarget& t) {
  if (t.server.empty()) return absl::InvalidArgumentError("NFS server is empty");
  if (t.server.size() > 253)
    return absl::InvalidArgumentError("NFS server name is longer than 253 characters");
  for (char c : t.server)
    if (!ValidHostChar(c))
      return absl::InvalidArgumentError(absl::StrCat(
          "NFS server '", t.server, "' is not a host name or IPv4 address"));
  return ValidatePath("NFS export", t.export_path, /*allow_root=*/true);
}

StatusOr<NfsUri> ParseNfsUri(const std::string& rest_in) {
  // The registry hands over what follows "nfs://" (or "nfs:"); accept the "//" too.
  std::string rest = rest_in.starts_with("//") ? rest_in.substr(2) : rest_in;
  if (rest.empty() || rest.front() == '/')
    return absl::InvalidArgumentError(absl::StrCat(
        "nfs URI must look like nfs://server/export/disk.img, got 'nfs://", rest, "'"));
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0)
    return absl::InvalidArgumentError(
        absl::StrCat("nfs URI needs a server and a path: 'nfs://", rest, "'"));
  NfsUri out;
  std::string host = rest.substr(0, slash);
  std::string full = rest.substr(slash);
  if (auto colon = host.find(':'); colon != std::string::npos) {
    ASSIGN_OR_RETURN(out.target.nfs_port, ParsePort("nfs URI port", host.substr(colon + 1)));
    host = host.substr(0, colon);
  }
  out.target.server = host;
  std::string export_path;
  for (const std::string& item :
       std::vector<std::string>(absl::StrSplit(query, '&', absl::SkipEmpty()))) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const std::string& k = kv.first;
    const std::string& v = kv.second;
    if (k == "export") {
      export_path = v;
    } else if (k == "nfsport") {
      ASSIGN_OR_RETURN(out.target.nfs_port, ParsePort("nfsport", v));
    } else if (k == "mountport") {
      ASSIGN_OR_RETURN(out.target.mount_port, ParsePort("mountport", v));
    } else if (k == "uid") {
      ASSIGN_OR_RETURN(out.target.uid, ParseId("uid", v));
    } else if (k == "gid") {
      ASSIGN_OR_RETURN(out.target.gid, ParseId("gid", v));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "nfs URI: unknown option '", k, "' (known: export, nfsport, mountport, uid, gid)"));
    }
  }
  RETURN_IF_ERROR(ValidatePath("nfs URI path", full, /*allow_root=*/false));
  if (export_path.empty()) {
    auto last = full.rfind('/');
    export_path = last == 0 ? "/" : full.substr(0, last);
  }
  if (export_path != "/" && export_path.back() == '/') export_path.pop_back();
  const bool under = export_path == "/" ||
                     (full.starts_with(export_path) && full.size() > export_path.size() &&
                      full[export_path.size()] == '/');
  if (!under)
    return absl::InvalidArgumentError(absl::StrCat("nfs URI: the path ", full,
                                                   " is not inside the export ", export_path));
  out.target.export_path = export_path;
  out.path = export_path == "/" ? full : full.substr(export_path.size());
  RETURN_IF_ERROR(ValidateTarget(out.target));
  return out;
}

std::string FormatNfsUri(const NfsTarget& target, const std::string& path) {
  return absl::StrCat("nfs://", target.server, JoinPath(target.export_path, path),
                      Options(target, true, target.export_path));
}

}  // namespace vdisk::blockdev::nfs
