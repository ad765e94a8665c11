#include "common/log.h"

#include <algorithm>
#include <cctype>

#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace vdisk {

void InitLogging(int verbosity, bool json) {
  auto logger = spdlog::stderr_color_mt("vdisk");
  if (json) {
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::level::level_enum level = spdlog::level::warn;
  if (verbosity == 1) level = spdlog::level::info;
  if (verbosity == 2) level = spdlog::level::debug;
  if (verbosity >= 3) level = spdlog::level::trace;
  spdlog::set_level(level);
  spdlog::flush_on(spdlog::level::warn);
}

bool IsSecretKey(const std::string& key) {
  std::string k = key;
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* needle : {"key", "secret", "password", "token", "credential", "passphrase"}) {
    if (k.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::map<std::string, std::string> Redacted(const std::map<std::string, std::string>& kv) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : kv) out[k] = IsSecretKey(k) ? "***" : v;
  return out;
}

}  // namespace vdisk
