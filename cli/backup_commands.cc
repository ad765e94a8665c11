#include "cli/commands.h"

namespace vdisk::cli {

// Filled in by the owner of this command family.
void AddBackupCommands(CLI::App& app) {}

}  // namespace vdisk::cli
