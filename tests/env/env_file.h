// The KEY=VALUE files the tests/env/ scripts write for the tests (rbd.env, s3.env, nfs.env,
// tgt.env): read into a map. Blank lines and '#' comments are skipped. FAILED_PRECONDITION naming
// `fixture` if the file is missing (the fixture did not start its server).
#pragma once

#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace vdisk::testing {

inline StatusOr<std::map<std::string, std::string>> ReadEnvFile(const std::string& path,
                                                                 const std::string& fixture) {
  std::ifstream in(path);
  if (!in)
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is missing: the ", fixture, " fixture did not start its server"));
  std::map<std::string, std::string> kv;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

}  // namespace vdisk::testing
