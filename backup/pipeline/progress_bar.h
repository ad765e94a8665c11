// Renders Progress for people (a one-line bar with bytes, rate and ETA, redrawn in place on a
// terminal) or for jobs (one JSON object per line). Not thread-safe: one renderer per ticker.
#pragma once

#include <cstdio>
#include <string>

#include "backup/pipeline/progress.h"

namespace vdisk::backup {

// "1.5 GiB", "512 KiB", "17 B".
std::string HumanBytes(double bytes);

// "[#####.....]  45%  1.2 GiB/2.7 GiB  182 MiB/s  ETA 0:08  stored 512 MiB".
std::string ProgressLine(const Progress& p, int bar_width = 24);

enum class ProgressStyle { kNone, kBar, kJson };

// Writes each Progress to `out` in `style`; the bar redraws with '\r' and ends with '\n' on the
// final update.
ProgressFn MakeProgressPrinter(ProgressStyle style, FILE* out);

}  // namespace vdisk::backup
