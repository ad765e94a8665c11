#include "blockdev/iscsi/lun_address.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"

namespace vdisk::blockdev::iscsi {

namespace {

StatusOr<int> ParseInt(const std::string& v, const std::string& what, int lo, int hi) {
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi)
    return absl::InvalidArgumentError(absl::StrCat(what, " '", v, "' must be an integer in [", lo, ", ", hi, "]"));
  return n;
}

// %XX decoding (libiscsi URLs encode ':' in target names as %3A).
std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && end == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::string LunAddress::describe() const { return absl::StrCat("iscsi://", portal, "/", iqn, "/", lun); }

StatusOr<std::string> NormalizePortal(const std::string& portal) {
  if (portal.empty()) return absl::InvalidArgumentError("iSCSI portal is empty");
  std::string host = portal, port;
  if (portal.front() == '[') {
    auto close = portal.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("bad portal '", portal, "'"));
    host = portal.substr(0, close + 1);
    if (close + 1 < portal.size()) {
      if (portal[close + 1] != ':') return absl::InvalidArgumentError(absl::StrCat("bad portal '", portal, "'"));
      port = portal.substr(close + 2);
    }
  } else if (auto c = portal.rfind(':'); c != std::string::npos) {
    host = portal.substr(0, c);
    port = portal.substr(c + 1);
  }
  if (host.empty() || host.find_first_of("/ ?#@") != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat("bad portal '", portal, "'"));
  int p = kDefaultPort;
  if (!port.empty()) {
    ASSIGN_OR_RETURN(p, ParseInt(port, "portal port", 1, 65535));
  }
  return absl::StrCat(host, ":", p);
}

Status ValidateIqn(const std::string& iqn, const std::string& what) {
  if (iqn.size() < 5 || iqn.size() > 223 || !(iqn.starts_with("iqn.") || iqn.starts_with("eui.") || iqn.starts_with("naa.")))
    return absl::InvalidArgumentError(absl::StrCat(what, " '", iqn, "' is not an iSCSI name (iqn.yyyy-mm.domain:...)"));
  for (char c : iqn)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':'))
      return absl::InvalidArgumentError(absl::StrCat(what, " '", iqn, "' may only hold a-z 0-9 . - :"));
  return Status();
}

StatusOr<ParsedUri> ParseIscsiUri(const std::string& rest_in) {
  std::string rest = rest_in;
  if (rest.starts_with("//")) rest = rest.substr(2);
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.find('@') != std::string::npos)
    return absl::InvalidArgumentError(
        "iscsi URI: credentials do not go into a URI; use chap_user= and chap_secret_file=");
  std::vector<std::string> parts = absl::StrSplit(rest, '/');
  if (parts.size() != 3)
    return absl::InvalidArgumentError(absl::StrCat("iscsi URI wants iscsi://<portal>/<target-iqn>/<lun>, got 'iscsi://", rest, "'"));
  ParsedUri out;
  ASSIGN_OR_RETURN(out.address.portal, NormalizePortal(parts[0]));
  out.address.iqn = PercentDecode(parts[1]);
  RETURN_IF_ERROR(ValidateIqn(out.address.iqn, "target"));
  ASSIGN_OR_RETURN(out.address.lun, ParseInt(parts[2], "LUN", 0, 16383));
  for (auto item : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const auto& [k, v] = kv;
    if (k == "initiator") {
      RETURN_IF_ERROR(ValidateIqn(v, "initiator"));
      out.options.initiator = v;
    } else if (k == "chap_user") {
      out.options.chap.user = v;
    } else if (k == "chap_secret_file") {
      ASSIGN_OR_RETURN(std::string secret, fs::ReadFile(v));
      if (auto nl = secret.find('\n'); nl != std::string::npos) secret.resize(nl);
      out.options.chap.password = secret;
    } else if (k == "timeout") {
      ASSIGN_OR_RETURN(out.options.command_timeout_s, ParseInt(v, "timeout", 0, 3600));
    } else if (k == "reconnect_timeout") {
      ASSIGN_OR_RETURN(out.options.reconnect_timeout_s, ParseInt(v, "reconnect_timeout", 0, 3600));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("iscsi URI: unknown option '", k,
                                                     "' (known: initiator, chap_user, chap_secret_file, timeout, reconnect_timeout)"));
    }
  }
  if (out.options.chap.user.empty() != out.options.chap.password.empty())
    return absl::InvalidArgumentError("iscsi URI: chap_user and chap_secret_file go together");
  return out;
}

}  // namespace vdisk::blockdev::iscsi
