#include "blockdev/local/layout.h"

#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vdisk::blockdev::local {

namespace {
bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}
}  // namespace

Status ValidateId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("empty id");
  if (id.size() > kMaxIdBytes)
    return absl::InvalidArgumentError(absl::StrCat("id longer than ", kMaxIdBytes, " bytes"));
  if (id == "." || id == "..") return absl::InvalidArgumentError("id may not be '.' or '..'");
  for (char c : id)
    if (!IsIdChar(c))
      return absl::InvalidArgumentError(
          absl::StrCat("id '", absl::CHexEscape(id), "' has characters outside [A-Za-z0-9._-]"));
  return Status();
}

Status ValidateName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name is empty");
  if (name.size() > kMaxNameBytes)
    return absl::InvalidArgumentError(absl::StrCat("name longer than ", kMaxNameBytes, " bytes"));
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return absl::InvalidArgumentError("name contains a control character");
  return Status();
}

std::string NewId(const std::string& name) {
  std::string prefix;
  for (char c : name) {
    if (prefix.size() >= 32) break;
    prefix += IsIdChar(c) && c != '.' ? c : '_';
  }
  if (prefix.empty()) prefix.push_back('v');  // (not = "v": GCC 12 -Wrestrict false positive)
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(prefix, "-", absl::StrFormat("%012x", rng() & 0xffffffffffffULL));
}

}  // namespace vdisk::blockdev::local
