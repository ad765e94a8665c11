// Keyed digests of credentials, for cache keys that must tell secret sets apart without holding
// the secrets: HMAC-SHA256 under a random key drawn once per process, over a length-prefixed
// encoding of the parts (so {"a":"bc"} and {"ab":"c"} never share an input). A digest reveals
// nothing about a secret outside this process and is never valid in another one.
// Thread-safe.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

namespace vdisk::blockdev {

// 32 raw bytes.
std::string CredentialDigest(std::initializer_list<std::string_view> parts);
// Of every key and value, in key order.
std::string CredentialDigest(const std::map<std::string, std::string>& secrets);

}  // namespace vdisk::blockdev
