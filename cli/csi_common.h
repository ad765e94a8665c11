// What every CLI family that speaks CSI over --endpoint shares: the common options, the client,
// error exits, key=value flags and output helpers (Die and HumanBytes serve the other families
// too). Single-threaded CLI code.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <google/protobuf/map.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "csi/client.h"

namespace vdisk::cli {

// Prints "vdisk: <msg>" and exits the command with `code` (CLI::RuntimeError).
[[noreturn]] void Die(const std::string& msg, int code = 1);

// $VDISK_CSI_ENDPOINT, else unix:///run/vdisk/csi.sock.
std::string DefaultEndpoint();

// Options every command of a CSI family shares.
struct Common {
  std::string endpoint = DefaultEndpoint();
  bool json = false;
  double timeout_s = 600;
};
void AddCommon(CLI::App* cmd, Common& c);
std::unique_ptr<csi::CsiClient> Connect(const Common& c);

// The call's result, or Die() naming the RPC and the gRPC code.
template <typename T>
T Check(StatusOr<T> r, const char* rpc) {
  if (!r.ok())
    Die(absl::StrCat(rpc, ": ", absl::StatusCodeToString(r.status().code()), ": ", r.status().message()));
  return std::move(*r);
}
void Check(const Status& s, const char* rpc);

// "1.50 GiB" (binary units up to PiB; whole bytes below 1 KiB).
std::string HumanBytes(double bytes);

std::map<std::string, std::string> ParseKeyValues(const std::vector<std::string>& items, const char* what);
// Parses KEY=VALUE flags (as ParseKeyValues) into a request's map field.
void PutKeyValues(const std::vector<std::string>& items, const char* what,
                  google::protobuf::Map<std::string, std::string>* out);

void PrintJson(const nlohmann::json& j);

}  // namespace vdisk::cli
