// kill9_campaign: SIGKILLs vdisk-csi inside CSI calls, `vdisk backup` inside uploads and
// restores, and `vdisk copy` inside copies, at random instants, over many rounds; restarts and
// retries as Kubernetes would; checks that nothing is lost or duplicated; reports how long each
// kind of call took to recover after the restart. Exit 0 only if no invariant broke and every
// recovery stayed under --max-recovery.
//
//   kill9_campaign --backend local|rbd [--rounds 40] [--process-rounds 3] [--seed N]
//                  [--max-recovery 20] [--report out.json]
//
// local: a local pool in a scratch directory (no reflink there, so clones and restores are
// host copies, killed and resumed too) and a file:// backup repository.
// rbd: a rados pool made for the run in the test cluster ($VDISK_CEPH_DIR, tests/env/ceph.sh),
// removed afterwards, and an s3:// repository on its radosgw.
// tests/crash/kill9_campaign.sh runs the long version (and starts a cluster when needed).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "blockdev/registry.h"
#include "tests/crash/csi_rounds.h"
#include "tests/crash/process_rounds.h"
#include "tests/csi/driver_process.h"

namespace {

using namespace vdisk;
using nlohmann::json;
namespace ct = vdisk::csi::testing;

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> kv;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

// Runs a shell command; its stdout (trailing newline kept) and exit status.
int Sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string s;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) s.append(buf, n);
  int rc = ::pclose(p);
  if (out) *out = s;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

json RecoveryJson(const crash::Recovery& r) {
  return {{"killed_in_flight", r.killed_in_flight},
          {"finished_before_kill", r.finished_first},
          {"aborted_answers", r.aborted_answers},
          {"recovery_s",
           {{"n", r.seconds.size()},
            {"p50", crash::Percentile(r.seconds, 50)},
            {"p90", crash::Percentile(r.seconds, 90)},
            {"p99", crash::Percentile(r.seconds, 99)},
            {"max", crash::Percentile(r.seconds, 100)}}}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kill -9 campaign against vdisk-csi, vdisk backup and vdisk copy"};
  std::string backend = "local", report;
  int rounds = 40, process_rounds = 3;
  uint32_t seed = std::random_device{}();
  double max_recovery = 20;
  app.add_option("--backend", backend, "local or rbd")->check(CLI::IsMember({"local", "rbd"}));
  app.add_option("--rounds", rounds, "CSI rounds (one kill each)");
  app.add_option("--process-rounds", process_rounds, "backup/restore/copy rounds (three kills each)");
  app.add_option("--seed", seed, "Random seed (printed; rerun with it to repeat a run's choices)");
  app.add_option("--max-recovery", max_recovery, "Fail if a retried call needs longer (seconds)");
  app.add_option("--report", report, "Write the figures as JSON here");
  CLI11_PARSE(app, argc, argv);
  std::printf("kill9: backend %s, %d CSI rounds, %d process rounds, seed %u\n", backend.c_str(),
              rounds, process_rounds, seed);

  blockdev::RegisterBuiltinBackends();
  ct::ScratchDir scratch("kill9-" + backend);
  ct::ScratchDir sockdir("kill9-sock", "/tmp");
  const std::string instance = absl::StrCat("kill9", ::getpid());
  blockdev::PoolConfig pool_cfg;
  std::string pool_flag, repo, rados_pool, conf;
  std::function<Status()> empty;
  if (backend == "local") {
    const std::string root = scratch / "pool";
    pool_cfg.name = pool_cfg.kind = "local";
    pool_cfg.options = {{"root", root}};
    pool_flag = "name=local,kind=local,root=" + root;
    repo = "file://" + (scratch / "repo");
    empty = [root]() -> Status {
      for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
        const std::string rel = e.path().string().substr(root.size() + 1);
        if (e.is_directory() || rel == ".vdisk-pool" || rel == ".lock") continue;
        return absl::FailedPreconditionError("left in the pool: " + rel);
      }
      for (const char* d : {"volumes", "snapshots", "staging"})
        if (!std::filesystem::is_empty(root + "/" + d))
          return absl::FailedPreconditionError(std::string("left in the pool: ") + d + "/...");
      return Status();
    };
  } else {
    const char* dir = std::getenv("VDISK_CEPH_DIR");
    if (!dir) {
      std::fprintf(stderr, "kill9: --backend rbd needs VDISK_CEPH_DIR (tests/env/ceph.sh up <dir>)\n");
      return 1;
    }
    auto env = ReadEnvFile(std::string(dir) + "/rbd.env");
    auto s3 = ReadEnvFile(std::string(dir) + "/s3.env");
    conf = env["CEPH_CONF"];
    rados_pool = instance;
    const std::string ceph = "ceph -c " + conf;
    if (Sh(absl::StrCat(ceph, " osd pool create ", rados_pool, " 8 8 >/dev/null 2>&1 && rbd -c ", conf,
                        " pool init ", rados_pool, " 2>&1")) != 0) {
      std::fprintf(stderr, "kill9: cannot create rados pool %s\n", rados_pool.c_str());
      return 1;
    }
    pool_cfg.name = "ceph";
    pool_cfg.kind = "rbd";
    pool_cfg.options = {{"conf", conf}, {"user", env["CEPH_DRIVER_USER"]},
                        {"keyring", env["CEPH_DRIVER_KEYRING"]}, {"rbd_pool", rados_pool},
                        {"instance", instance}};
    pool_flag = absl::StrCat("name=ceph,kind=rbd,conf=", conf, ",user=", env["CEPH_DRIVER_USER"],
                             ",keyring=", env["CEPH_DRIVER_KEYRING"], ",rbd_pool=", rados_pool,
                             ",instance=", instance);
    for (const auto& [k, v] : s3) ::setenv(k.c_str(), v.c_str(), 1);
    repo = absl::StrCat("s3://", instance);
    empty = [conf, rados_pool, instance]() -> Status {
      std::string out;
      const std::string rbd = absl::StrCat("rbd -c ", conf, " -p ", rados_pool);
      if (Sh(rbd + " ls 2>&1", &out) != 0 || !out.empty())
        return absl::FailedPreconditionError("images left: " + out);
      if (Sh(rbd + " trash ls 2>&1", &out) != 0 || !out.empty())
        return absl::FailedPreconditionError("images left in the trash: " + out);
      Sh(absl::StrCat("rados -c ", conf, " -p ", rados_pool, " listomapkeys vdisk.journal.", instance,
                      " 2>/dev/null"),
         &out);
      for (const auto& k : absl::StrSplit(out, '\n', absl::SkipEmpty()))
        if (std::string(k) != "probe") return absl::FailedPreconditionError("journal keys left: " + out);
      return Status();
    };
  }

  auto pools = std::make_unique<blockdev::PoolSet>();
  auto pool = pools->Add(pool_cfg).ok() ? pools->Get(pool_cfg.name)
                                        : StatusOr<std::shared_ptr<blockdev::Pool>>(absl::InternalError("pool config"));
  if (!pool.ok()) {
    std::fprintf(stderr, "kill9: opening the pool: %s\n", pool.status().ToString().c_str());
    return 1;
  }

  crash::CsiCampaignOptions co;
  co.endpoint = "unix://" + (sockdir / "csi.sock");
  co.driver_args = {"--node-id", "kill9", "--role", "controller", "--pool", pool_flag, "--state-dir",
                    scratch / "state", "-v"};
  co.log_path = scratch / "vdisk-csi.log";
  co.pool = *pool;
  co.pool_name = pool_cfg.name;
  co.rounds = rounds;
  co.seed = seed;
  co.pool_is_empty = empty;
  auto csi_result = crash::RunCsiCampaign(co);

  crash::ProcessCampaignOptions po;
  po.vdisk = ct::BinaryPath("cli/vdisk");
  po.work = scratch / "proc";
  std::filesystem::create_directories(po.work);
  po.repo = repo;
  po.rounds = process_rounds;
  po.seed = seed + 1;
  auto proc = process_rounds > 0 ? crash::RunProcessCampaign(po) : crash::ProcessCampaignResult{};

  // Figures.
  json out = {{"backend", backend}, {"seed", seed}, {"csi_rounds", csi_result.rounds}};
  std::vector<double> all;
  for (const auto& [call, r] : csi_result.by_call) {
    out["csi"][call] = RecoveryJson(r);
    all.insert(all.end(), r.seconds.begin(), r.seconds.end());
  }
  out["csi_all"] = RecoveryJson(crash::Recovery{all, 0, 0, 0});
  out["backup"] = RecoveryJson(proc.backup);
  out["restore"] = RecoveryJson(proc.restore);
  out["copy"] = RecoveryJson(proc.copy);
  out["backups_resumed"] = proc.backups_resumed;
  out["copies_resumed"] = proc.copies_resumed;
  std::vector<std::string> violations = csi_result.violations;
  violations.insert(violations.end(), proc.violations.begin(), proc.violations.end());
  const double worst = crash::Percentile(all, 100);
  if (worst > max_recovery)
    violations.push_back(absl::StrCat("a retried call needed ", worst, " s after the restart (limit ",
                                      max_recovery, " s)"));
  out["violations"] = violations;
  std::printf("kill9: %s\n", out.dump(2).c_str());
  if (!report.empty()) std::ofstream(report) << out.dump(2) << "\n";
  if (!violations.empty()) std::printf("kill9: driver log kept: %s\n", co.log_path.c_str());

  if (backend == "rbd") {
    pools.reset();  // close our handle before the pool goes
    pool = absl::InternalError("closed");
    co.pool.reset();
    if (violations.empty() || std::getenv("VDISK_TEST_KEEP") == nullptr)
      Sh(absl::StrCat("ceph -c ", conf, " osd pool rm ", rados_pool, " ", rados_pool,
                      " --yes-i-really-really-mean-it >/dev/null 2>&1"));
    else
      std::printf("kill9: rados pool %s kept for a look (VDISK_TEST_KEEP)\n", rados_pool.c_str());
  }
  if (!violations.empty()) {
    ::setenv("VDISK_TEST_KEEP", "1", 1);  // keep the scratch directory for a look
    return 1;
  }
  return 0;
}
