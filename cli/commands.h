// Subcommands of the `vdisk` operator CLI, one registration function per family.
// Each adds its subcommands to `app`; a subcommand reports failure by throwing
// CLI::RuntimeError(exit_code) after printing a one-line error to stderr.
// Exit codes: 0 success, 1 operation failed, 2 usage error, 3 verification failed (data differs).
#pragma once

#include <CLI/CLI.hpp>

namespace vdisk::cli {

void AddVolumeCommands(CLI::App& app);  // volume/snapshot lifecycle through a CSI socket
// snapshot changes / snapshot group / volume modify (after AddVolumeCommands: it extends them)
void AddCsiServiceCommands(CLI::App& app);
void AddCopyCommands(CLI::App& app);    // copy / import between devices and volumes
void AddBackupCommands(CLI::App& app);  // backup init|create|list|show|restore|verify|prune|delete
void AddServeCommands(CLI::App& app);   // serve: vhost-user-blk export of a volume
void AddBenchCommands(CLI::App& app);   // bench: engine-level benchmark drivers used by bench/

}  // namespace vdisk::cli
