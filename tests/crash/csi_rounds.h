// The CSI part of the kill -9 campaign: rounds of CreateVolume (plain, from a snapshot, from a
// volume), CreateSnapshot, DeleteVolume and DeleteSnapshot against the real vdisk-csi, each
// with the driver SIGKILLed at a random instant inside the call, restarted, and the same call
// retried as the Kubernetes sidecars retry it; then the end-state checks (names, listings,
// bytes, an empty pool after deleting everything).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "tests/crash/campaign_model.h"
#include "tests/csi/driver_process.h"

namespace vdisk::crash {

struct CsiCampaignOptions {
  std::vector<std::string> driver_args;  // everything but --endpoint
  std::string endpoint;                  // unix:///...
  std::string log_path;
  std::shared_ptr<blockdev::Pool> pool;  // the same pool, opened by the campaign for bytes
  std::string pool_name;                 // the configured name (CSI ids carry it)
  int rounds = 20;
  uint64_t volume_bytes = 16ull << 20;
  double retry_interval_s = 0.2;   // how often a failed retry is repeated
  double give_up_s = 300;          // a call that does not recover within this is a failure
  uint32_t seed = 1;
  // Empty-pool check after everything is deleted: OK, or what is left (polled until `settle_s`).
  std::function<Status()> pool_is_empty;
  double settle_s = 60;
};

struct CsiCampaignResult {
  std::map<std::string, Recovery> by_call;  // "CreateVolume", "CreateVolume(snapshot)", ...
  std::vector<std::string> violations;      // broken invariants, each described
  int rounds = 0;
};

CsiCampaignResult RunCsiCampaign(const CsiCampaignOptions& o);

}  // namespace vdisk::crash
