// Rendering CSI requests and responses for logs without secrets.
//
// Every field the spec marks with the csi_secret option (secrets maps) and every mount flag
// (the spec warns they may hold sensitive values) is replaced by "***" before the message is
// printed; values of secret-looking keys in parameters/context maps are redacted too
// (common/log.h IsSecretKey). Thread-safe, pure.
#pragma once

#include <string>

#include <google/protobuf/message.h>

namespace vdisk::csi {

// One-line text of `msg` with secrets redacted.
std::string Redact(const google::protobuf::Message& msg);

}  // namespace vdisk::csi
