#include "backup/pipeline/progress_bar.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"

namespace vdisk::backup {

std::string HumanBytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024 && u < 5) {
    bytes /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrFormat("%.0f B", bytes);
  const int decimals = bytes < 10 ? 2 : bytes < 100 ? 1 : 0;
  return absl::StrFormat("%.*f %s", decimals, bytes, kUnits[u]);
}

std::string ProgressLine(const Progress& p, int bar_width) {
  const double frac = p.bytes_total ? std::min(1.0, double(p.bytes_done) / p.bytes_total) : 1.0;
  const int filled = static_cast<int>(frac * bar_width);
  std::string bar = "[" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
  const double rate = p.elapsed_seconds > 0 ? p.bytes_done / p.elapsed_seconds : 0;
  std::string eta = "--:--";
  if (rate > 0 && p.bytes_total >= p.bytes_done) {
    long s = std::lround((p.bytes_total - p.bytes_done) / rate);
    eta = s >= 3600 ? absl::StrFormat("%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60)
                    : absl::StrFormat("%ld:%02ld", s / 60, s % 60);
  }
  std::string line = absl::StrFormat("%s %s %3.0f%%  %s/%s  %s/s  ETA %s", p.phase, bar,
                                     frac * 100, HumanBytes(p.bytes_done),
                                     HumanBytes(p.bytes_total), HumanBytes(rate), eta);
  if (p.bytes_transferred)
    line += absl::StrFormat("  %s %s", p.phase == "backup" ? "stored" : "fetched",
                            HumanBytes(p.bytes_transferred));
  if (!p.item.empty()) line += "  " + p.item;
  return line;
}

ProgressFn MakeProgressPrinter(ProgressStyle style, FILE* out) {
  if (style == ProgressStyle::kNone) return nullptr;
  if (style == ProgressStyle::kJson) {
    return [out](const Progress& p) {
      nlohmann::json j = {{"progress", p.phase},   {"item", p.item},
                          {"bytes_done", p.bytes_done}, {"bytes_total", p.bytes_total},
                          {"bytes_transferred", p.bytes_transferred},
                          {"elapsed_seconds", p.elapsed_seconds}, {"final", p.final}};
      std::fprintf(out, "%s\n", j.dump().c_str());
      std::fflush(out);
    };
  }
  return [out](const Progress& p) {
    std::string line = ProgressLine(p);
    std::fprintf(out, "\r%s\033[K%s", line.c_str(), p.final ? "\n" : "");
    std::fflush(out);
  };
}

}  // namespace vdisk::backup
