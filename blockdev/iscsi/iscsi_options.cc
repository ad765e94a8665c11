#include "blockdev/iscsi/iscsi_options.h"

#include <unistd.h>

#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "blockdev/iscsi/target_host.h"

namespace vdisk::blockdev::iscsi {

namespace {

StatusOr<int> Int(const std::string& pool, const std::string& key, const std::string& v, int lo, int hi) {
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi)
    return absl::InvalidArgumentError(
        absl::StrCat("iscsi pool '", pool, "': ", key, "='", v, "' must be an integer in [", lo, ", ", hi, "]"));
  return n;
}

StatusOr<Toggle> ParseToggle(const std::string& pool, const std::string& key, const std::string& v) {
  if (v == "auto") return Toggle::kAuto;
  if (v == "on" || v == "true") return Toggle::kOn;
  if (v == "off" || v == "false") return Toggle::kOff;
  return absl::InvalidArgumentError(absl::StrCat("iscsi pool '", pool, "': ", key, "='", v, "' is not auto, on or off"));
}

uint32_t Fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

std::string NodeInitiator(const std::string& initiator_prefix, const std::string& node_id) {
  std::string safe;
  for (char c : node_id) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    safe += ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-' || l == '.') ? l : '-';
  }
  if (safe != node_id || safe.empty()) safe += absl::StrFormat("-%08x", Fnv1a(node_id));
  return absl::StrCat(initiator_prefix, ".", safe);
}

StatusOr<Chap> ChapFromSecrets(const Params& secrets) {
  Chap c;
  auto get = [&](const char* k) {
    auto it = secrets.find(k);
    return it == secrets.end() ? std::string() : it->second;
  };
  c.user = get(kChapUserKey);
  c.password = get(kChapPasswordKey);
  c.target_user = get(kChapUserInKey);
  c.target_password = get(kChapPasswordInKey);
  if (c.user.empty() != c.password.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("CHAP secrets: ", kChapUserKey, " and ", kChapPasswordKey, " go together"));
  if (c.target_user.empty() != c.target_password.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("CHAP secrets: ", kChapUserInKey, " and ", kChapPasswordInKey, " go together"));
  if (!c.target_user.empty() && c.user.empty())
    return absl::InvalidArgumentError("CHAP secrets: mutual CHAP needs the one-way credentials too");
  if (c.user.find_first_of(" \t\n'\"") != std::string::npos)
    return absl::InvalidArgumentError("CHAP secrets: the user name may not contain blanks or quotes");
  return c;
}

StatusOr<IscsiPoolOptions> ParseIscsiPoolConfig(const PoolConfig& config, const Params& secrets) {
  IscsiPoolOptions o;
  o.name = config.name;
  o.node_id = config.node_id.empty() ? Hostname() : config.node_id;
  std::string target_host = "local";
  for (const auto& [k, v] : config.options) {
    if (k == "portal" || k == "spec") {
      ASSIGN_OR_RETURN(o.portal, NormalizePortal(v));
    } else if (k == "backing_dir") {
      if (v.empty() || v.front() != '/' || v.find("/../") != std::string::npos || v.ends_with("/.."))
        return absl::InvalidArgumentError(absl::StrCat("iscsi pool '", o.name, "': backing_dir must be an absolute path"));
      o.backing_dir = v;
      while (o.backing_dir.size() > 1 && o.backing_dir.back() == '/') o.backing_dir.pop_back();
    } else if (k == "target_host") {
      target_host = v;
    } else if (k == "tgt_control") {
      ASSIGN_OR_RETURN(o.tgt_control, Int(o.name, k, v, 0, 65535));
    } else if (k == "iqn_prefix") {
      RETURN_IF_ERROR(ValidateIqn(v, "iqn_prefix"));
      o.iqn_prefix = v;
    } else if (k == "initiator_prefix") {
      RETURN_IF_ERROR(ValidateIqn(v, "initiator_prefix"));
      o.initiator_prefix = v;
    } else if (k == "acl") {
      if (v != "initiator" && v != "open")
        return absl::InvalidArgumentError(absl::StrCat("iscsi pool '", o.name, "': acl='", v, "' is not initiator or open"));
      o.open_acl = v == "open";
    } else if (k == "reflink") {
      ASSIGN_OR_RETURN(o.reflink, ParseToggle(o.name, k, v));
    } else if (k == "xcopy") {
      ASSIGN_OR_RETURN(Toggle t, ParseToggle(o.name, k, v));
      o.xcopy = t == Toggle::kOn;
    } else if (k == "login_timeout") {
      ASSIGN_OR_RETURN(o.login_timeout_s, Int(o.name, k, v, 1, 600));
    } else if (k == "command_timeout") {
      ASSIGN_OR_RETURN(o.command_timeout_s, Int(o.name, k, v, 0, 3600));
    } else if (k == "reconnect_timeout") {
      ASSIGN_OR_RETURN(o.reconnect_timeout_s, Int(o.name, k, v, 0, 3600));
    } else if (k == "export_check") {
      ASSIGN_OR_RETURN(o.export_check_s, Int(o.name, k, v, 0, 86400));
    } else if (k == "max_volumes") {
      ASSIGN_OR_RETURN(o.max_volumes, Int(o.name, k, v, 0, 1000000));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "iscsi pool '", o.name, "': unknown option '", k,
          "' (known: portal, backing_dir, target_host, tgt_control, iqn_prefix, initiator_prefix, acl, reflink, "
          "xcopy, login_timeout, command_timeout, reconnect_timeout, export_check, max_volumes)"));
    }
  }
  if (o.portal.empty()) return absl::InvalidArgumentError(absl::StrCat("iscsi pool '", o.name, "': portal is required"));
  if (target_host != "none") {
    o.target_host = TargetHost::ParsePrefix(target_host);
    if (o.backing_dir.empty())
      return absl::InvalidArgumentError(
          absl::StrCat("iscsi pool '", o.name, "': backing_dir is required (or target_host: none on nodes)"));
  }
  ASSIGN_OR_RETURN(o.chap, ChapFromSecrets(secrets));
  return o;
}

Status ValidateIscsiParams(const Params& params) {
  for (const auto& [k, v] : params) {
    if (k == kPreallocationParam) {
      if (v != "none" && v != "full")
        return absl::InvalidArgumentError(absl::StrCat("parameter preallocation='", v, "' is not none or full"));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("parameter '", k, "' is not known to iscsi pools (known: preallocation)"));
    }
  }
  return Status();
}

bool WantsPreallocation(const Params& params) {
  auto it = params.find(kPreallocationParam);
  return it != params.end() && it->second == "full";
}

}  // namespace vdisk::blockdev::iscsi
