// Where an iSCSI LUN is and who we are to it: portal, target IQN, LUN, our initiator name and
// CHAP credentials, plus the session tuning shared by every connection to it.
//
// Device URIs (scheme "iscsi", registered by register.h; the form QEMU and libiscsi use, minus
// credentials, which never go into a URI):
//   iscsi://<host>[:<port>]/<target-iqn>/<lun>[?initiator=<iqn>&chap_user=<u>
//        &chap_secret_file=<path>&timeout=<s>&reconnect_timeout=<s>]
// The CHAP secret is read from the file (first line). Pure data and parsing; thread-safe.
#pragma once

#include <string>

#include "common/status.h"

namespace vdisk::blockdev::iscsi {

inline constexpr int kDefaultPort = 3260;
inline constexpr char kDefaultInitiator[] = "iqn.2024-01.io.vdisk:initiator";

struct Chap {
  std::string user, password;                // the target checks us (one-way CHAP)
  std::string target_user, target_password;  // we check the target (mutual CHAP), optional
  bool enabled() const { return !user.empty(); }
};

struct LunAddress {
  std::string portal;  // "host:port"
  std::string iqn;
  int lun = 0;
  std::string describe() const;  // "iscsi://portal/iqn/lun" (no credentials)
};

struct SessionOptions {
  std::string initiator = kDefaultInitiator;
  Chap chap;
  // Seconds a login or a command may take before it fails (0: no limit for commands).
  int login_timeout_s = 10;
  int command_timeout_s = 60;
  // After the connection drops, how long a queue keeps logging in again (commands in flight are
  // re-issued) before it fails them with UNAVAILABLE.
  int reconnect_timeout_s = 15;
};

// "host" or "host:port" (IPv6 as [addr]:port) -> "host:port". INVALID_ARGUMENT if malformed.
StatusOr<std::string> NormalizePortal(const std::string& portal);

// A name usable as an iSCSI name (RFC 3722 "iqn." form): lower case, [a-z0-9.:-] only.
// INVALID_ARGUMENT otherwise.
Status ValidateIqn(const std::string& iqn, const std::string& what);

struct ParsedUri {
  LunAddress address;
  SessionOptions options;
};
// The part of an "iscsi:" URI after "iscsi:" (a leading "//" already removed or not).
StatusOr<ParsedUri> ParseIscsiUri(const std::string& rest);

}  // namespace vdisk::blockdev::iscsi
