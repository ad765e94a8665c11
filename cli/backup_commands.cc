// `vdisk backup init | create | list | show | restore | verify | prune | delete | add-key |
// unlock`:
// backups of VM disks (and their Kubernetes manifests) to a file:// or s3:// repository.
// Human output and a progress bar on a terminal; --json prints one JSON result object on stdout
// (and --progress json puts progress lines on stderr) for Jobs. Exit codes: 0 success, 1 failed,
// 2 usage / invalid argument, 3 verification failed or data lost (corrupt / missing chunks),
// 130 / 143 stopped cleanly by SIGINT / SIGTERM (create, restore, verify, prune, delete: the
// repository lock is released and a re-run resumes; see cli/cancel_signals.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "backup/pipeline/backup.h"
#include "backup/pipeline/backup_metrics.h"
#include "backup/pipeline/kube_manifests.h"
#include "backup/pipeline/pool_source.h"
#include "backup/pipeline/progress_bar.h"
#include "backup/pipeline/prune.h"
#include "backup/pipeline/restore.h"
#include "backup/pipeline/verify.h"
#include "backup/repo/repository.h"
#include "backup/store/open_store.h"
#include "blockdev/registry.h"
#include "cli/cancel_signals.h"
#include "cli/commands.h"
#include "cli/text_table.h"
#include "common/fs.h"

namespace vdisk::cli {

namespace {

using namespace vdisk::backup;
using nlohmann::json;

// Flags every backup subcommand shares: where the repository is and how to open it.
struct RepoFlags {
  std::string command;
  std::string repo;
  std::string password_file;
  std::string key_file;
  std::string s3_endpoint, s3_region, s3_credentials_file, s3_ca_file;
  bool s3_path_style = false, s3_virtual_host = false, s3_insecure = false;
  unsigned s3_concurrency = 16;
  double s3_retry_seconds = 90;
  bool json = false;
  std::string progress = "auto";
  double lock_wait = 0;
};

void AddRepoFlags(CLI::App* cmd, RepoFlags* f) {
  cmd->add_option("--repo,-r", f->repo,
                  "Repository: file:///path or s3://bucket[/prefix] (env VDISK_BACKUP_REPO)");
  cmd->add_option("--password-file", f->password_file,
                  "File holding the repository password (env VDISK_BACKUP_PASSWORD_FILE, or the "
                  "password itself in VDISK_BACKUP_PASSWORD)");
  cmd->add_option("--key-file", f->key_file,
                  "File holding a >= 32-byte repository key, e.g. a mounted Kubernetes Secret "
                  "(env VDISK_BACKUP_KEY_FILE)");
  cmd->add_option("--s3-endpoint", f->s3_endpoint, "S3 endpoint URL (env S3_ENDPOINT / AWS_ENDPOINT_URL)");
  cmd->add_option("--s3-region", f->s3_region, "S3 region (env S3_REGION / AWS_REGION)");
  cmd->add_flag("--s3-path-style", f->s3_path_style, "Path-style addressing (default with --s3-endpoint)");
  cmd->add_flag("--s3-virtual-host", f->s3_virtual_host, "Virtual-host addressing (default on AWS)");
  cmd->add_option("--s3-credentials-file", f->s3_credentials_file,
                  "KEY=VALUE file (S3_ACCESS_KEY/S3_SECRET_KEY or AWS_* names) or an AWS "
                  "credentials file; default: environment");
  cmd->add_option("--s3-ca-file", f->s3_ca_file, "PEM CA bundle for the endpoint's TLS certificate");
  cmd->add_flag("--s3-insecure", f->s3_insecure, "Do NOT verify the endpoint's TLS certificate");
  cmd->add_option("--s3-concurrency", f->s3_concurrency, "Parallel S3 connections (default 16)");
  cmd->add_option("--s3-retry-seconds", f->s3_retry_seconds,
                  "Give up on an S3 request after retrying this long (default 90)");
  cmd->add_flag("--json", f->json, "Print the result as one JSON object");
  cmd->add_option("--progress", f->progress, "Progress output: auto, bar, json (stderr), none")
      ->check(CLI::IsMember({"auto", "bar", "json", "none"}));
  cmd->add_option("--lock-wait", f->lock_wait, "Wait up to this many seconds for a repository lock");
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string v, fs::ReadFile(path));
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

StatusOr<RepoSecret> ResolveSecret(const RepoFlags& f) {
  std::string key_file = f.key_file.empty() ? EnvOr("VDISK_BACKUP_KEY_FILE", "") : f.key_file;
  std::string pw_file = f.password_file.empty() ? EnvOr("VDISK_BACKUP_PASSWORD_FILE", "") : f.password_file;
  if (!key_file.empty()) {
    ASSIGN_OR_RETURN(std::string v, ReadSecretFile(key_file));
    return RepoSecret{RepoSecret::Kind::kKeyFile, v, "key file " + key_file};
  }
  if (!pw_file.empty()) {
    ASSIGN_OR_RETURN(std::string v, ReadSecretFile(pw_file));
    return RepoSecret{RepoSecret::Kind::kPassword, v, "password file " + pw_file};
  }
  if (const char* pw = std::getenv("VDISK_BACKUP_PASSWORD"); pw && *pw)
    return RepoSecret{RepoSecret::Kind::kPassword, pw, "$VDISK_BACKUP_PASSWORD"};
  return absl::InvalidArgumentError(
      "no repository secret: give --password-file or --key-file (or set VDISK_BACKUP_PASSWORD)");
}

StatusOr<std::unique_ptr<ObjectStore>> OpenStoreFromFlags(const RepoFlags& f) {
  std::string uri = f.repo.empty() ? EnvOr("VDISK_BACKUP_REPO", "") : f.repo;
  if (uri.empty()) return absl::InvalidArgumentError("no repository: give --repo (or set VDISK_BACKUP_REPO)");
  StoreOptions o;
  if (!f.s3_credentials_file.empty()) RETURN_IF_ERROR(LoadCredentialsFile(f.s3_credentials_file, &o));
  if (!f.s3_endpoint.empty()) o.endpoint = f.s3_endpoint;
  if (!f.s3_region.empty()) o.region = f.s3_region;
  if (f.s3_path_style) o.path_style = true;
  if (f.s3_virtual_host) o.path_style = false;
  o.ca_file = f.s3_ca_file;
  o.insecure_tls = f.s3_insecure;
  o.concurrency = f.s3_concurrency;
  o.retry_seconds = f.s3_retry_seconds;
  return OpenStore(uri, o);
}

StatusOr<std::unique_ptr<Repository>> OpenRepo(const RepoFlags& f) {
  ASSIGN_OR_RETURN(RepoSecret secret, ResolveSecret(f));
  ASSIGN_OR_RETURN(auto store, OpenStoreFromFlags(f));
  return Repository::Open(std::move(store), secret);
}

LockOptions LockFrom(const RepoFlags& f) {
  LockOptions l;
  l.wait = std::chrono::seconds(static_cast<int64_t>(f.lock_wait));
  return l;
}

ProgressFn ProgressFrom(const RepoFlags& f) {
  ProgressStyle style = ProgressStyle::kNone;
  if (f.progress == "bar") style = ProgressStyle::kBar;
  if (f.progress == "json") style = ProgressStyle::kJson;
  if (f.progress == "auto" && !f.json && ::isatty(STDERR_FILENO)) style = ProgressStyle::kBar;
  return MakeProgressPrinter(style, stderr);
}

int ExitCodeFor(const Status& s) {
  if (absl::IsCancelled(s) && ReceivedStopSignal() != 0) return 128 + ReceivedStopSignal();
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: return 2;
    case absl::StatusCode::kDataLoss: return 3;
    default: return 1;
  }
}

std::string CodeName(absl::StatusCode c) { return absl::StatusCodeToString(c); }

// Prints the error (stderr, and a JSON object on stdout with --json) and exits the command.
[[noreturn]] void Fail(const RepoFlags& f, const Status& s) {
  // A store that stopped answering (or a full disk) is worth a re-run: say what it keeps.
  std::string hint;
  if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsResourceExhausted(s)) {
    if (f.command == "create")
      hint = "; the packs already stored are kept: re-run the same command to resume";
    else if (f.command == "restore" || f.command == "verify")
      hint = "; nothing was changed in the repository: re-run the same command";
  }
  std::cerr << "vdisk backup " << f.command << ": " << s.message() << " [" << CodeName(s.code())
            << "]" << hint << std::endl;
  if (f.json)
    std::cout << json{{"ok", false},
                      {"error", {{"code", CodeName(s.code())}, {"message", std::string(s.message())}}}}
                     .dump(2)
              << std::endl;
  throw CLI::RuntimeError(ExitCodeFor(s));
}

template <typename T>
T OrFail(const RepoFlags& f, StatusOr<T> v) {
  if (!v.ok()) Fail(f, v.status());
  return std::move(*v);
}

void Print(const RepoFlags& f, const json& j, const std::string& human) {
  if (f.json) std::cout << j.dump(2) << std::endl;
  else if (!human.empty()) std::cout << human << std::flush;
}

// "NAME=VALUE" pairs given as repeated flags.
StatusOr<std::map<std::string, std::string>> NamedValues(const std::vector<std::string>& items,
                                                         const std::string& flag) {
  std::map<std::string, std::string> out;
  for (const auto& it : items) {
    auto eq = it.find('=');
    if (eq == std::string::npos || eq == 0)
      return absl::InvalidArgumentError(absl::StrCat(flag, " wants NAME=VALUE, got '", it, "'"));
    out[it.substr(0, eq)] = it.substr(eq + 1);
  }
  return out;
}

// A change map file: JSON [[offset,length],...] or [{"offset":..,"length":..},...], or text
// lines "offset length".
StatusOr<blockdev::ExtentList> ReadChangedRanges(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  blockdev::ExtentList out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_discarded()) {
    if (j.is_object() && j.contains("changed")) j = j["changed"];
    if (!j.is_array()) return absl::InvalidArgumentError(path + ": expected a JSON array of extents");
    for (const auto& e : j) {
      if (e.is_array() && e.size() == 2) out.push_back({e[0].get<uint64_t>(), e[1].get<uint64_t>()});
      else if (e.is_object()) out.push_back({e.value("offset", 0ull), e.value("length", 0ull)});
      else return absl::InvalidArgumentError(path + ": bad extent entry");
    }
    return blockdev::Normalize(out);
  }
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t off = 0, len = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &off) || !absl::SimpleAtoi(parts[1], &len))
      return absl::InvalidArgumentError(absl::StrCat(path, ": bad line '", std::string(line), "'"));
    out.push_back({off, len});
  }
  return blockdev::Normalize(out);
}

StatusOr<uint64_t> ParseSize(const std::string& s) {
  uint64_t mult = 1;
  std::string num = s;
  if (!num.empty()) {
    switch (std::toupper(static_cast<unsigned char>(num.back()))) {
      case 'K': mult = 1ull << 10; num.pop_back(); break;
      case 'M': mult = 1ull << 20; num.pop_back(); break;
      case 'G': mult = 1ull << 30; num.pop_back(); break;
      default: break;
    }
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(num, &v)) return absl::InvalidArgumentError("bad size '" + s + "'");
  return v * mult;
}

json DiskSummaryJson(const DiskBackup& d) {
  return {{"name", d.name},           {"size_bytes", d.size_bytes},
          {"data_bytes", d.data_bytes()}, {"change_map", d.change_map},
          {"bytes_read", d.stats.bytes_read}, {"bytes_new", d.stats.bytes_new},
          {"bytes_stored_new", d.stats.bytes_stored_new}, {"chunks_new", d.stats.chunks_new},
          {"chunks_reused", d.stats.chunks_reused}, {"chunks_unchanged", d.stats.chunks_unchanged},
          {"chunks_zero", d.stats.chunks_zero}};
}

// ---------------------------------------------------------------------------------------------

void AddInit(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "init";
  auto chunk = std::make_shared<std::string>("1M");
  auto pack = std::make_shared<std::string>("64M");
  auto level = std::make_shared<int>(1);
  auto create = std::make_shared<bool>(false);
  CLI::App* cmd = backup->add_subcommand("init", "Create a repository (generates its key)");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("--chunk-size", *chunk, "Chunk size, power of two 64K..16M (default 1M)");
  cmd->add_option("--pack-size", *pack, "Target pack object size (default 64M)");
  cmd->add_option("--zstd-level", *level, "zstd level 1..19 (default 1)");
  cmd->add_flag("--create", *create, "Create the directory / bucket if it does not exist");
  cmd->callback([=] {
    InitOptions o;
    o.chunk_size = static_cast<uint32_t>(OrFail(*f, ParseSize(*chunk)));
    o.pack_size = OrFail(*f, ParseSize(*pack));
    o.zstd_level = *level;
    o.create_root = *create;
    RepoSecret secret = OrFail(*f, ResolveSecret(*f));
    auto store = OrFail(*f, OpenStoreFromFlags(*f));
    auto repo = OrFail(*f, Repository::Init(std::move(store), secret, o));
    const auto& c = repo->config();
    Print(*f,
          {{"ok", true}, {"repository", repo->describe()}, {"id", c.id},
           {"chunk_size", c.chunk_size}, {"pack_size", c.pack_size}, {"zstd_level", c.zstd_level}},
          absl::StrCat("initialised repository ", repo->describe(), " (id ", c.id.substr(0, 16),
                       ", chunk ", HumanBytes(c.chunk_size), ", pack ", HumanBytes(c.pack_size),
                       ")\nkeep the password/key safe: without it the backups cannot be read\n"));
  });
}

void AddAddKey(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "add-key";
  auto new_pw = std::make_shared<std::string>();
  auto new_key = std::make_shared<std::string>();
  CLI::App* cmd = backup->add_subcommand("add-key", "Add another password or key file that opens the repository");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("--new-password-file", *new_pw, "The new password");
  cmd->add_option("--new-key-file", *new_key, "The new key file (>= 32 bytes)");
  cmd->callback([=] {
    if (new_pw->empty() == new_key->empty())
      Fail(*f, absl::InvalidArgumentError("give exactly one of --new-password-file, --new-key-file"));
    auto repo = OrFail(*f, OpenRepo(*f));
    RepoSecret s;
    if (!new_pw->empty()) s = {RepoSecret::Kind::kPassword, OrFail(*f, ReadSecretFile(*new_pw)), *new_pw};
    else s = {RepoSecret::Kind::kKeyFile, OrFail(*f, ReadSecretFile(*new_key)), *new_key};
    std::string id = OrFail(*f, repo->AddKey(s));
    Print(*f, {{"ok", true}, {"key_slot", id}}, absl::StrCat("added key slot ", id, "\n"));
  });
}

struct CreateFlags {
  std::vector<std::string> disks, base_snapshots, changed_ranges, changed_since, source_snapshots,
      volumes, tags, k8s_paths, k8s_yaml;
  std::string pool, pool_config, group, parent = "auto";
  std::string metrics_file, push_gateway, push_job = "vdisk_backup";
  bool full = false;
  unsigned workers = 0, read_depth = 16;
};

// --metrics-file / --push-gateway: the backup's figures for Prometheus (backup_metrics.h).
// Reporting never changes the backup's outcome; a failure to report is a warning.
void ReportBackupMetrics(const CreateFlags& c, const std::string& group, const BackupResult* r,
                         double seconds) {
  if (c.metrics_file.empty() && c.push_gateway.empty()) return;
  const std::string text = BackupMetricsText(group, r, seconds, ::time(nullptr));
  if (!c.metrics_file.empty()) {
    Status s = fs::WriteFileAtomic(c.metrics_file, text, 0644);
    if (!s.ok()) std::cerr << "vdisk backup: warning: --metrics-file: " << s.ToString() << "\n";
  }
  if (!c.push_gateway.empty()) {
    Status s = PushMetrics(c.push_gateway, c.push_job, group, text);
    if (!s.ok()) std::cerr << "vdisk backup: warning: --push-gateway: " << s.ToString() << "\n";
  }
}

void AddCreate(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "create";
  auto c = std::make_shared<CreateFlags>();
  CLI::App* cmd = backup->add_subcommand("create", "Back up disks (and the VM's Kubernetes manifests)");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("--disk,-d", c->disks,
                  "[NAME=]SOURCE, repeatable. SOURCE: a device URI or file path (disk.img, "
                  "/dev/xvdb, rbd:pool/image), or snapshot:<id> of --pool. NAME defaults to "
                  "'disk' (disk0, disk1, ... when several)")
      ->required();
  cmd->add_option("--pool", c->pool,
                  "Pool holding the snapshot:<id> sources (e.g. local:/var/lib/vdisk); its change "
                  "map since the parent's snapshot makes the backup incremental");
  cmd->add_option("--pool-config", c->pool_config,
                  "vdisk-csi config file whose `pools:` list defines the pools; then snapshot:<id> "
                  "may be a CSI snapshot handle v1.snap.<pool>.<id> (VolumeSnapshotContent "
                  "status.snapshotHandle)");
  cmd->add_option("--base-snapshot", c->base_snapshots,
                  "NAME=SNAPSHOT: the pool snapshot the change map starts from (default: the "
                  "parent backup's source snapshot)");
  cmd->add_option("--changed-ranges", c->changed_ranges,
                  "NAME=FILE: extents changed since the parent's source (JSON [[offset,length],...] "
                  "or 'offset length' lines), e.g. from CSI SnapshotMetadata");
  cmd->add_option("--changed-since", c->changed_since,
                  "NAME=IMAGE: the parent's source, a reflinked copy of this disk's image file "
                  "(XFS/btrfs); the change map is their FIEMAP difference");
  cmd->add_option("--source-snapshot", c->source_snapshots,
                  "NAME=LABEL recorded as the disk's source snapshot (e.g. the VolumeSnapshot name)");
  cmd->add_option("--volume", c->volumes, "NAME=ID recorded as the disk's volume / PVC");
  cmd->add_option("--group,-g", c->group,
                  "Retention group (default: the VirtualMachine's namespace/name, else 'default')");
  cmd->add_option("--parent", c->parent,
                  "Parent backup: 'auto' (latest of the group with these disks; default) or an id");
  cmd->add_flag("--full", c->full, "No parent: a full backup");
  cmd->add_option("--tag", c->tags, "KEY=VALUE, repeatable");
  cmd->add_option("--k8s", c->k8s_paths,
                  "Kubernetes manifest file or directory of *.yaml to store with the backup");
  cmd->add_option("--k8s-yaml", c->k8s_yaml, "Kubernetes manifest YAML given inline");
  cmd->add_option("--workers", c->workers, "Hash/compress/encrypt threads (default: CPUs)");
  cmd->add_option("--read-depth", c->read_depth, "Reads in flight per disk (default 16)");
  cmd->add_option("--metrics-file", c->metrics_file,
                  "Write the backup's figures (Prometheus text format) to this file, e.g. for "
                  "node_exporter's textfile collector (*.prom); also on failure");
  cmd->add_option("--push-gateway", c->push_gateway,
                  "Push the backup's figures to this Prometheus Pushgateway (http://host:9091), "
                  "grouped by job and backup group; also on failure");
  cmd->add_option("--push-job", c->push_job, "Job name for --push-gateway (default vdisk_backup)");
  cmd->callback([=] {
    BackupOptions o;
    auto base = OrFail(*f, NamedValues(c->base_snapshots, "--base-snapshot"));
    auto changed = OrFail(*f, NamedValues(c->changed_ranges, "--changed-ranges"));
    auto labels = OrFail(*f, NamedValues(c->source_snapshots, "--source-snapshot"));
    auto since = OrFail(*f, NamedValues(c->changed_since, "--changed-since"));
    auto volumes = OrFail(*f, NamedValues(c->volumes, "--volume"));
    o.tags = OrFail(*f, NamedValues(c->tags, "--tag"));
    for (size_t i = 0; i < c->disks.size(); ++i) {
      const std::string& spec = c->disks[i];
      DiskSource d;
      auto eq = spec.find('=');
      auto colon = spec.find(':');
      if (eq != std::string::npos && (colon == std::string::npos || eq < colon)) {
        d.name = spec.substr(0, eq);
        d.uri = spec.substr(eq + 1);
      } else {
        d.name = c->disks.size() == 1 ? "disk" : absl::StrCat("disk", i);
        d.uri = spec;
      }
      if (d.uri.starts_with("snapshot:")) {
        SnapshotRef ref = OrFail(*f, ParseSnapshotRef(d.uri.substr(9)));
        d.pool_snapshot = ref.local_id;
        d.uri.clear();
        d.pool = OrFail(*f, ResolvePool(c->pool, c->pool_config, ref.pool));
      }
      if (auto it = base.find(d.name); it != base.end()) d.base_snapshot = it->second;
      if (auto it = labels.find(d.name); it != labels.end()) d.source_snapshot = it->second;
      if (auto it = since.find(d.name); it != since.end()) d.changed_since_image = it->second;
      if (auto it = volumes.find(d.name); it != volumes.end()) d.volume = it->second;
      if (auto it = changed.find(d.name); it != changed.end())
        d.changed = OrFail(*f, ReadChangedRanges(it->second));
      o.disks.push_back(std::move(d));
    }
    if (!c->k8s_paths.empty()) o.kubernetes = OrFail(*f, LoadKubeManifests(c->k8s_paths));
    for (size_t i = 0; i < c->k8s_yaml.size(); ++i)
      o.kubernetes.push_back(OrFail(*f, ParseKubeManifest(absl::StrCat("inline-", i, ".yaml"), c->k8s_yaml[i])));
    o.group = c->group;
    o.parent = c->full ? "" : c->parent;
    o.workers = c->workers;
    o.read_depth = c->read_depth;
    o.lock = LockFrom(*f);
    o.progress = ProgressFrom(*f);
    CancelOnSignals stop("vdisk backup create");
    o.cancel = stop.flag();
    const auto started = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    auto repo = OpenRepo(*f);
    auto made = repo.ok() ? CreateBackup(**repo, o) : StatusOr<BackupResult>(repo.status());
    if (!made.ok()) ReportBackupMetrics(*c, o.group.empty() ? "default" : o.group, nullptr, elapsed());
    BackupResult r = OrFail(*f, std::move(made));
    ReportBackupMetrics(*c, r.manifest.group, &r, r.seconds);
    const Manifest& m = r.manifest;
    json disks = json::array();
    std::string human = absl::StrCat("backup ", m.id, " (group ", m.group,
                                     m.parent.empty() ? ", full" : ", parent " + m.parent, ")\n");
    uint64_t read = 0;
    for (const auto& d : m.disks) {
      disks.push_back(DiskSummaryJson(d));
      read += d.stats.bytes_read;
      absl::StrAppend(&human, "  ", d.name, ": ", HumanBytes(d.size_bytes), " disk, ",
                      HumanBytes(d.data_bytes()), " data, read ", HumanBytes(d.stats.bytes_read),
                      ", new ", HumanBytes(d.stats.bytes_new), " -> stored ",
                      HumanBytes(d.stats.bytes_stored_new), ", deduplicated ",
                      HumanBytes(d.stats.bytes_read - std::min(d.stats.bytes_read, d.stats.bytes_new)),
                      " (", d.change_map, ")\n");
    }
    absl::StrAppend(&human, "  ", r.packs_written, " pack(s) uploaded (", HumanBytes(r.bytes_uploaded),
                    ")", r.packs_resumed ? absl::StrCat(", ", r.packs_resumed, " reused from an interrupted run") : "",
                    ", ", m.kubernetes.size(), " Kubernetes manifest(s), ",
                    absl::StrFormat("%.1f s, %s/s\n", r.seconds, HumanBytes(read / std::max(r.seconds, 1e-3))));
    Print(*f,
          {{"ok", true}, {"id", m.id}, {"group", m.group}, {"parent", m.parent},
           {"disks", disks}, {"packs_written", r.packs_written}, {"packs_resumed", r.packs_resumed},
           {"bytes_uploaded", r.bytes_uploaded}, {"kubernetes", m.kubernetes.size()},
           {"seconds", r.seconds}},
          human);
  });
}

void AddList(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "list";
  auto group = std::make_shared<std::string>();
  CLI::App* cmd = backup->add_subcommand("list", "List backups");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("--group,-g", *group, "Only this group");
  cmd->callback([=] {
    auto repo = OrFail(*f, OpenRepo(*f));
    auto ids = OrFail(*f, repo->ListBackups());
    json out = json::array();
    using A = TextTable::Align;
    TextTable table({{"ID", A::kLeft}, {"GROUP", A::kLeft}, {"DISKS", A::kRight}, {"SIZE", A::kRight},
                     {"DATA", A::kRight}, {"NEW", A::kRight}, {"PARENT", A::kLeft}});
    for (const auto& id : ids) {
      auto m = repo->ReadManifest(id);
      if (!m.ok()) {
        out.push_back({{"id", id}, {"error", std::string(m.status().message())}});
        table.AddNote(absl::StrCat(id, "  unreadable: ", m.status().message()));
        continue;
      }
      if (!group->empty() && m->group != *group) continue;
      uint64_t size = 0, data = 0, fresh = 0;
      for (const auto& d : m->disks) {
        size += d.size_bytes;
        data += d.data_bytes();
        fresh += d.stats.bytes_stored_new;
      }
      out.push_back(ManifestToJson(*m, false));
      table.AddRow({id, m->group, absl::StrCat(m->disks.size()), HumanBytes(size), HumanBytes(data),
                    HumanBytes(fresh), m->parent.empty() ? "-" : m->parent});
    }
    std::string human = table.Render();
    Print(*f, {{"ok", true}, {"backups", out}}, human);
  });
}

void AddShow(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "show";
  auto id = std::make_shared<std::string>("latest");
  auto group = std::make_shared<std::string>();
  auto k8s_out = std::make_shared<std::string>();
  CLI::App* cmd = backup->add_subcommand("show", "Show one backup");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("backup", *id, "Backup id, unique prefix, or 'latest' (default)");
  cmd->add_option("--group,-g", *group, "Group for 'latest'");
  cmd->add_option("--k8s-out", *k8s_out, "Write the stored Kubernetes manifests into this directory");
  cmd->callback([=] {
    auto repo = OrFail(*f, OpenRepo(*f));
    std::string full = OrFail(*f, repo->ResolveBackupId(*id, *group));
    Manifest m = OrFail(*f, repo->ReadManifest(full));
    json j = ManifestToJson(m, false);
    if (!k8s_out->empty()) j["k8s_written"] = OrFail(*f, WriteKubeManifests(m.kubernetes, *k8s_out));
    std::string human = j.dump(2) + "\n";
    Print(*f, {{"ok", true}, {"backup", j}}, human);
  });
}

void AddRestore(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "restore";
  auto o = std::make_shared<RestoreOptions>();
  auto to_dir = std::make_shared<std::string>();
  auto k8s_out = std::make_shared<std::string>();
  o->backup = "latest";
  CLI::App* cmd = backup->add_subcommand("restore", "Restore a disk (or all disks) of a backup");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("backup", o->backup, "Backup id, unique prefix, or 'latest' (default)");
  cmd->add_option("--group,-g", o->group, "Group for 'latest'");
  cmd->add_option("--disk", o->disk, "Disk name (needed when the backup has several)");
  cmd->add_option("--to,-t", o->target,
                  "Target: a device URI / block device / existing file (overwritten) or a new "
                  "file path (created sparse)");
  cmd->add_option("--to-dir", *to_dir, "Restore every disk into DIR/<disk>.img (new files)");
  auto pool = std::make_shared<std::string>();
  auto pool_config = std::make_shared<std::string>();
  auto pool_name = std::make_shared<std::string>();
  cmd->add_option("--pool", *pool, "Restore into a new volume of this pool (with --volume-name)");
  cmd->add_option("--pool-config", *pool_config, "vdisk-csi config file defining the pools");
  cmd->add_option("--pool-name", *pool_name, "Pool of --pool-config (default: its first)");
  cmd->add_option("--volume-name", o->volume_name, "Name of the new pool volume");
  cmd->add_option("--k8s-out", *k8s_out, "Write the backup's Kubernetes manifests into this directory");
  cmd->add_option("--parallel", o->parallel, "Ranged reads in flight (default: --s3-concurrency)");
  cmd->callback([=] {
    const bool to_pool = !pool->empty() || !pool_config->empty();
    int targets = !o->target.empty() + !to_dir->empty() + to_pool;
    if (targets != 1)
      Fail(*f, absl::InvalidArgumentError("give exactly one of --to, --to-dir, --pool/--pool-config"));
    if (to_pool) o->pool = OrFail(*f, ResolvePool(*pool, *pool_config, *pool_name));
    o->lock = LockFrom(*f);
    o->progress = ProgressFrom(*f);
    CancelOnSignals stop("vdisk backup restore");
    o->cancel = stop.flag();
    auto repo = OrFail(*f, OpenRepo(*f));
    std::vector<RestoreOptions> jobs;
    if (!to_dir->empty()) {
      std::string full = OrFail(*f, repo->ResolveBackupId(o->backup, o->group));
      Manifest m = OrFail(*f, repo->ReadManifest(full));
      if (Status s = fs::MakeDirs(*to_dir); !s.ok()) Fail(*f, s);
      for (const auto& d : m.disks) {
        if (!o->disk.empty() && d.name != o->disk) continue;
        RestoreOptions j = *o;
        j.backup = full;
        j.disk = d.name;
        j.target = OrFail(*f, fs::JoinUnder(*to_dir, d.name + ".img"));
        jobs.push_back(j);
      }
    } else {
      jobs.push_back(*o);
    }
    json results = json::array();
    std::string human, backup_id;
    for (const auto& j : jobs) {
      RestoreResult r = OrFail(*f, Restore(*repo, j));
      backup_id = r.backup_id;
      results.push_back({{"disk", r.disk}, {"target", r.target}, {"size_bytes", r.size_bytes},
                         {"bytes_written", r.bytes_written}, {"bytes_holes", r.bytes_holes},
                         {"bytes_fetched", r.bytes_fetched}, {"created", r.created},
                         {"seconds", r.seconds}});
      absl::StrAppend(&human, "restored ", r.disk, " of ", r.backup_id, " to ", r.target, ": ",
                      HumanBytes(r.bytes_written), " written, ", HumanBytes(r.bytes_holes),
                      " left as holes, ",
                      absl::StrFormat("%.1f s, %s/s (every chunk verified)\n", r.seconds,
                                      HumanBytes(r.bytes_written / std::max(r.seconds, 1e-3))));
    }
    json out = {{"ok", true}, {"backup", backup_id}, {"disks", results}};
    if (!k8s_out->empty()) {
      std::string full = OrFail(*f, repo->ResolveBackupId(o->backup, o->group));
      Manifest m = OrFail(*f, repo->ReadManifest(full));
      out["k8s_written"] = OrFail(*f, WriteKubeManifests(m.kubernetes, *k8s_out));
      absl::StrAppend(&human, "wrote ", m.kubernetes.size(), " Kubernetes manifest(s) to ", *k8s_out, "\n");
    }
    Print(*f, out, human);
  });
}

void AddVerify(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "verify";
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* cmd = backup->add_subcommand("verify", "Check backups: metadata, or every chunk with --deep");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("backups", o->backups, "Backup ids (default: all)");
  cmd->add_flag("--deep", o->deep, "Download and decrypt the chunks and check their hashes");
  cmd->add_option("--sample", o->sample_percent, "With --deep: percentage of chunks to read (default 100)");
  cmd->callback([=] {
    o->lock = LockFrom(*f);
    o->progress = ProgressFrom(*f);
    CancelOnSignals stop("vdisk backup verify");
    o->cancel = stop.flag();
    auto repo = OrFail(*f, OpenRepo(*f));
    VerifyResult r = OrFail(*f, Verify(*repo, *o));
    json problems = json::array();
    std::string human;
    for (const auto& p : r.problems) {
      problems.push_back({{"backup", p.backup}, {"disk", p.disk}, {"offset", p.offset},
                          {"object", p.chunk}, {"message", p.message}});
      absl::StrAppend(&human, "PROBLEM ", p.backup.empty() ? "repository" : p.backup,
                      p.disk.empty() ? "" : " disk " + p.disk,
                      p.backup.empty() ? "" : absl::StrCat(" offset ", p.offset), " ",
                      p.chunk.substr(0, 16), ": ", p.message, "\n");
    }
    absl::StrAppend(&human, r.ok() ? "OK: " : "FAILED: ", r.backups, " backup(s), ",
                    r.chunks_referenced, " chunk(s), ", r.packs, " pack(s)",
                    o->deep ? absl::StrCat(", ", r.chunks_read, " chunk(s) read and verified (",
                                           HumanBytes(r.bytes_read), ")")
                            : "",
                    r.ok() ? "" : absl::StrCat(", ", r.problems.size(), " problem(s)"), "\n");
    Print(*f,
          {{"ok", r.ok()}, {"backups", r.backups}, {"chunks", r.chunks_referenced},
           {"chunks_read", r.chunks_read}, {"bytes_read", r.bytes_read}, {"packs", r.packs},
           {"problems", problems}, {"seconds", r.seconds}},
          human);
    if (!r.ok()) throw CLI::RuntimeError(3);
  });
}

json PruneJson(const PruneResult& r) {
  return {{"ok", true}, {"kept", r.kept}, {"removed", r.removed},
          {"packs_deleted", r.packs_deleted}, {"bytes_freed", r.bytes_freed},
          {"packs_kept", r.packs_kept}, {"bytes_kept", r.bytes_kept},
          {"bytes_unreferenced_in_kept_packs", r.bytes_unreferenced_in_kept_packs},
          {"stale_locks_removed", r.stale_locks_removed}, {"uploads_aborted", r.uploads_aborted}};
}

std::string PruneHuman(const PruneResult& r, bool dry_run) {
  std::string h;
  for (const auto& id : r.removed) absl::StrAppend(&h, dry_run ? "would remove " : "removed ", id, "\n");
  absl::StrAppend(&h, r.kept.size(), " backup(s) kept; ", r.packs_deleted, " pack(s) ",
                  dry_run ? "would be " : "", "deleted (", HumanBytes(r.bytes_freed), "), ",
                  r.packs_kept, " kept (", HumanBytes(r.bytes_kept), ", of which ",
                  HumanBytes(r.bytes_unreferenced_in_kept_packs), " unreferenced)\n");
  return h;
}

void AddPrune(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "prune";
  auto o = std::make_shared<PruneOptions>();
  auto no_gc = std::make_shared<bool>(false);
  CLI::App* cmd = backup->add_subcommand("prune", "Apply a retention policy and collect garbage");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("--keep-last", o->policy.keep_last, "Keep the N newest backups of each group");
  cmd->add_option("--keep-hourly", o->policy.keep_hourly, "Keep the newest backup of each of the last N hours");
  cmd->add_option("--keep-daily", o->policy.keep_daily, "Keep the newest backup of each of the last N days");
  cmd->add_option("--keep-weekly", o->policy.keep_weekly, "Keep the newest backup of each of the last N weeks");
  cmd->add_option("--keep-monthly", o->policy.keep_monthly, "Keep the newest backup of each of the last N months");
  cmd->add_option("--group,-g", o->group, "Only prune this group");
  cmd->add_flag("--dry-run,-n", o->dry_run, "Show what would be removed");
  cmd->add_flag("--no-gc", *no_gc, "Remove manifests only; keep packs");
  cmd->callback([=] {
    o->gc = !*no_gc;
    o->lock = LockFrom(*f);
    CancelOnSignals stop("vdisk backup " + f->command);
    o->cancel = stop.flag();
    auto repo = OrFail(*f, OpenRepo(*f));
    PruneResult r = OrFail(*f, Prune(*repo, *o));
    Print(*f, PruneJson(r), PruneHuman(r, o->dry_run));
  });
}

void AddDelete(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "delete";
  auto o = std::make_shared<PruneOptions>();
  auto no_gc = std::make_shared<bool>(false);
  CLI::App* cmd = backup->add_subcommand("delete", "Delete backups by id, then collect garbage");
  AddRepoFlags(cmd, f.get());
  cmd->add_option("backups", o->remove, "Backup ids")->required();
  cmd->add_flag("--no-gc", *no_gc, "Remove manifests only; keep packs");
  cmd->callback([=] {
    o->gc = !*no_gc;
    o->lock = LockFrom(*f);
    CancelOnSignals stop("vdisk backup " + f->command);
    o->cancel = stop.flag();
    auto repo = OrFail(*f, OpenRepo(*f));
    PruneResult r = OrFail(*f, Prune(*repo, *o));
    Print(*f, PruneJson(r), PruneHuman(r, false));
  });
}

void AddUnlock(CLI::App* backup) {
  auto f = std::make_shared<RepoFlags>();
  f->command = "unlock";
  auto all = std::make_shared<bool>(false);
  CLI::App* cmd = backup->add_subcommand(
      "unlock", "Remove stale repository locks (left by crashed processes)");
  AddRepoFlags(cmd, f.get());
  cmd->add_flag("--all", *all, "Remove every lock, live ones too (only when nothing uses the repository)");
  cmd->callback([=] {
    auto repo = OrFail(*f, OpenRepo(*f));
    auto removed = OrFail(*f, RepoLock::RemoveLocks(repo->store(), *all));
    std::string human;
    for (const auto& r : removed) absl::StrAppend(&human, "removed ", r, "\n");
    absl::StrAppend(&human, removed.size(), " lock(s) removed\n");
    Print(*f, {{"ok", true}, {"removed", removed}}, human);
  });
}

}  // namespace

void AddBackupCommands(CLI::App& app) {
  CLI::App* backup = app.add_subcommand(
      "backup", "Back up and restore VM disks to S3 or a directory (incremental, deduplicated, "
                "compressed, encrypted)");
  backup->require_subcommand(1);
  AddInit(backup);
  AddCreate(backup);
  AddList(backup);
  AddShow(backup);
  AddRestore(backup);
  AddVerify(backup);
  AddPrune(backup);
  AddDelete(backup);
  AddAddKey(backup);
  AddUnlock(backup);
}

}  // namespace vdisk::cli
