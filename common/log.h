// Process-wide structured logging on spdlog.
//
// Call InitLogging() once at start-up; afterwards use spdlog::info/warn/... anywhere (thread-safe).
// Log lines are "key=value" structured text, or one JSON object per line with json=true.
// Never log secrets: pass anything that may hold one through Redacted().
#pragma once

#include <map>
#include <string>

namespace vdisk {

// verbosity: 0 = warn, 1 = info, 2 = debug, 3+ = trace.
void InitLogging(int verbosity, bool json = false);

// Returns a copy of `kv` with the values of secret-looking keys (key, secret, password, token,
// credential, passphrase — case-insensitive substring match) replaced by "***".
std::map<std::string, std::string> Redacted(const std::map<std::string, std::string>& kv);

// True if a key name looks like it holds a secret (same rule as Redacted).
bool IsSecretKey(const std::string& key);

}  // namespace vdisk
