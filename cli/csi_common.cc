#include "cli/csi_common.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace vdisk::cli {

void Die(const std::string& msg, int code) {
  std::cerr << "vdisk: " << msg << "\n";
  throw CLI::RuntimeError(code);
}

std::string DefaultEndpoint() {
  const char* env = std::getenv("VDISK_CSI_ENDPOINT");
  return env && *env ? env : "unix:///run/vdisk/csi.sock";
}

void AddCommon(CLI::App* cmd, Common& c) {
  cmd->add_option("--endpoint", c.endpoint, "CSI socket (default $VDISK_CSI_ENDPOINT or unix:///run/vdisk/csi.sock)");
  cmd->add_flag("--json", c.json, "Print one JSON document instead of text");
  cmd->add_option("--timeout", c.timeout_s, "Seconds to wait for the CSI call (default 600)");
}

std::unique_ptr<csi::CsiClient> Connect(const Common& c) {
  auto client = csi::CsiClient::Create(c.endpoint, std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000)));
  if (!client.ok()) Die(std::string(client.status().message()), 2);
  return std::move(*client);
}

void Check(const Status& s, const char* rpc) {
  if (!s.ok()) Die(absl::StrCat(rpc, ": ", absl::StatusCodeToString(s.code()), ": ", s.message()));
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double b = bytes;
  int u = 0;
  while (b >= 1024 && u < 5) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

std::map<std::string, std::string> ParseKeyValues(const std::vector<std::string>& items, const char* what) {
  std::map<std::string, std::string> out;
  for (const auto& kv : items) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) Die(absl::StrCat(what, " '", kv, "' is not key=value"), 2);
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

void PutKeyValues(const std::vector<std::string>& items, const char* what,
                  google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : ParseKeyValues(items, what)) (*out)[k] = v;
}

void PrintJson(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

}  // namespace vdisk::cli
