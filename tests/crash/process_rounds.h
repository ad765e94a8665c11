// The kill -9 campaign for the long-running CLI operations: `vdisk backup create` and
// `vdisk backup restore` SIGKILLed at a random instant and run again (the backup resumes its
// interrupted upload, the restore starts over), every backup restored bit-identical; and
// `vdisk copy` SIGKILLed and resumed from its checkpoint, the copy identical to its source.
#pragma once

#include <string>
#include <vector>

#include "tests/crash/campaign_model.h"

namespace vdisk::crash {

struct ProcessCampaignOptions {
  std::string vdisk;  // the vdisk binary
  std::string work;   // scratch directory (disks, restores, copies)
  std::string repo;   // file:///... or s3://bucket/prefix (S3 settings from the environment)
  int rounds = 4;
  uint64_t disk_bytes = 256ull << 20;
  uint32_t seed = 1;
};

struct ProcessCampaignResult {
  Recovery backup, restore, copy;  // seconds: how long the re-run took
  int backups_resumed = 0;         // re-runs that adopted packs of the killed run
  int copies_resumed = 0;          // re-runs that continued from the checkpoint
  std::vector<std::string> violations;
};

ProcessCampaignResult RunProcessCampaign(const ProcessCampaignOptions& o);

}  // namespace vdisk::crash
