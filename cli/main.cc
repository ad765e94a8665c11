// `vdisk`: the operator CLI. Subcommand families live in cli/*_commands.cc.
#include <iostream>

#include "cli/commands.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"vdisk: VM disk volumes, snapshots, clones, copies and backups"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vdisk 0.1.0");
  int verbosity = 0;
  bool json_logs = false;
  app.add_flag("-v,--verbose", verbosity, "More log output (repeat for debug/trace)");
  app.add_flag("--log-json", json_logs, "Log one JSON object per line");
  app.parse_complete_callback([&] { vdisk::InitLogging(verbosity, json_logs); });

  vdisk::cli::AddVolumeCommands(app);
  vdisk::cli::AddCsiServiceCommands(app);
  vdisk::cli::AddCopyCommands(app);
  vdisk::cli::AddBackupCommands(app);
  vdisk::cli::AddServeCommands(app);
  vdisk::cli::AddBenchCommands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return (e.get_exit_code() == 0) ? 0 : (rc == 0 ? 0 : (dynamic_cast<const CLI::RuntimeError*>(&e) ? rc : 2));
  }
  return 0;
}
