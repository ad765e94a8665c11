// `vdisk serve`: exports a device or a pool volume as a vhost-user-blk socket for QEMU/KVM.
//
//   vdisk serve --socket /run/vm1.sock --uri file:/var/lib/images/vm1.img [--queues 2]
//   vdisk serve --socket /run/vm1.sock --pool local:/var/lib/vdisk --volume <id> [--read-only]
//   ... [--qos iopsLimit=2000 --qos bpsLimit=200Mi] [--gate]
//
// --qos limits the export per volume (the keys of blockdev/qos/qos_limits.h) through the same
// I/O gate vdisk-csi puts in front of its exports; --gate puts the gate in without limits (what
// bench/run.sh qos compares against no gate).
// Runs in the foreground until SIGTERM / SIGINT (in-flight requests complete, the socket is
// removed). SIGHUP re-opens the volume and, if it grew, tells the guest its new size.
// Prints "vdisk-serve: ready <socket>" on stdout once QEMU may connect.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/qos/gated_device.h"
#include "blockdev/qos/qos_limits.h"
#include "blockdev/registry.h"
#include "blockdev/vhost/export.h"
#include "cli/commands.h"
#include "common/metrics_server.h"

namespace vdisk::cli {

namespace {

struct ServeFlags {
  std::string socket;
  std::string uri;
  std::string pool;
  std::string volume;
  unsigned queues = 1;
  bool read_only = false;
  std::string serial;
  bool no_discard = false;
  std::string socket_mode = "0660";
  std::string metrics_address;
  std::vector<std::string> qos;
  bool gate = false;
};

// Opens what the flags name: a device URI, or a volume of a pool; through `gate` if given.
StatusOr<std::shared_ptr<blockdev::Device>> OpenTarget(const ServeFlags& f, blockdev::PoolSet* pools,
                                                       const std::shared_ptr<blockdev::qos::IoGate>& gate) {
  std::unique_ptr<blockdev::Device> dev;
  if (!f.uri.empty()) {
    ASSIGN_OR_RETURN(dev, blockdev::OpenDeviceUri(f.uri, f.read_only));
  } else {
    ASSIGN_OR_RETURN(auto pool, pools->Get(pools->default_pool()));
    ASSIGN_OR_RETURN(dev, pool->open_volume(f.volume, f.read_only));
  }
  if (gate) dev = blockdev::qos::GateDevice(std::move(dev), gate);
  return std::shared_ptr<blockdev::Device>(std::move(dev));
}

[[noreturn]] void Fail(const std::string& what, const Status& s, int code = 1) {
  std::cerr << "vdisk serve: " << what << ": " << s.ToString() << std::endl;
  throw CLI::RuntimeError(code);
}

void RunServe(const ServeFlags& f) {
  if (f.uri.empty() == f.volume.empty()) {
    Fail("usage", absl::InvalidArgumentError("give exactly one of --uri or --volume"), 2);
  }
  if (!f.volume.empty() && f.pool.empty()) {
    Fail("usage", absl::InvalidArgumentError("--volume needs --pool"), 2);
  }
  unsigned mode = 0;
  try {
    mode = static_cast<unsigned>(std::stoul(f.socket_mode, nullptr, 8));
  } catch (...) {
    Fail("usage", absl::InvalidArgumentError("--socket-mode must be octal, e.g. 0660"), 2);
  }
  blockdev::RegisterBuiltinBackends();
  blockdev::PoolSet pools;
  if (!f.pool.empty()) {
    auto config = blockdev::ParsePoolFlag(f.pool);
    if (!config.ok()) Fail("--pool", config.status(), 2);
    Status s = pools.Add(*config);
    if (!s.ok()) Fail("--pool", s, 2);
  }

  // Signals are taken synchronously by this thread; block them before any thread starts so the
  // export's threads inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::shared_ptr<blockdev::qos::IoGate> gate;
  if (f.gate || !f.qos.empty()) {
    blockdev::Params params;
    for (const auto& kv : f.qos) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) Fail("--qos", absl::InvalidArgumentError("'" + kv + "' is not key=value"), 2);
      params[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    auto limits = blockdev::qos::ParseQosParams(params);
    if (!limits.ok()) Fail("--qos", limits.status(), 2);
    gate = std::make_shared<blockdev::qos::IoGate>(f.socket);
    gate->SetLimits(*limits);
  }
  auto device = OpenTarget(f, &pools, gate);
  if (!device.ok()) Fail(f.uri.empty() ? "opening volume " + f.volume : "opening " + f.uri,
                         device.status());
  blockdev::vhost::ExportOptions options;
  options.socket_path = f.socket;
  options.num_queues = f.queues;
  options.read_only = f.read_only;
  options.serial = f.serial;
  if (options.serial.empty()) {
    std::string id = f.volume.empty() ? f.uri.substr(f.uri.find_last_of('/') + 1) : f.volume;
    options.serial = id.substr(0, 20);
  }
  options.discard = options.write_zeroes = !f.no_discard;
  options.socket_mode = mode;
  options.metrics_volume = f.volume.empty() ? f.uri : f.volume;
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!f.metrics_address.empty()) {
    auto started = metrics::MetricsServer::Start(f.metrics_address, &metrics::Registry::Default());
    if (!started.ok()) Fail("--metrics-address", started.status());
    metrics_server = std::move(*started);
    std::cout << "vdisk-serve: metrics on port " << metrics_server->port() << std::endl;
  }
  auto exp = blockdev::vhost::Export::Start(*device, options);
  if (!exp.ok()) Fail("starting the export", exp.status());
  std::cout << "vdisk-serve: ready " << f.socket << std::endl;

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      auto reopened = OpenTarget(f, &pools, gate);
      if (!reopened.ok()) {
        std::cerr << "vdisk serve: SIGHUP: reopening: " << reopened.status().ToString() << std::endl;
        continue;
      }
      auto size = (*exp)->Resize(*reopened);
      if (size.ok()) {
        std::cerr << "vdisk serve: capacity " << *size << " bytes" << std::endl;
      } else {
        std::cerr << "vdisk serve: SIGHUP: " << size.status().ToString() << std::endl;
      }
      continue;
    }
    break;
  }
  (*exp)->Stop();
  auto st = (*exp)->stats();
  std::cerr << "vdisk serve: stopped after " << st.connections << " connection(s), "
            << st.requests << " requests, " << st.read_bytes << " bytes read, " << st.write_bytes
            << " bytes written, " << st.io_errors << " I/O errors, " << st.bad_requests
            << " bad requests, " << st.bounced << " bounced" << std::endl;
}

}  // namespace

void AddServeCommands(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Export a device or volume as a vhost-user-blk socket for QEMU/KVM (foreground)");
  cmd->add_option("--socket", flags->socket, "Unix socket path to create")->required();
  cmd->add_option("--uri", flags->uri,
                  "Device URI (file:/path, /dev/..., rbd:pool/image?conf=...)");
  cmd->add_option("--pool", flags->pool, "Pool holding --volume (e.g. local:/var/lib/vdisk)");
  cmd->add_option("--volume", flags->volume, "Pool-local volume id to export");
  cmd->add_option("--queues", flags->queues, "Virtqueues (one worker thread each)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--read-only", flags->read_only, "Export read-only (VIRTIO_BLK_F_RO)");
  cmd->add_option("--serial", flags->serial, "Disk serial (GET_ID, max 20 bytes)");
  cmd->add_flag("--no-discard", flags->no_discard, "Do not offer discard / write-zeroes");
  cmd->add_option("--socket-mode", flags->socket_mode, "Socket file permissions (octal)");
  cmd->add_option("--metrics-address", flags->metrics_address,
                  "Serve Prometheus metrics (the export's I/O counts, bytes, latency) at host:port");
  cmd->add_option("--qos", flags->qos, "QoS limit key=value, e.g. iopsLimit=2000, bpsLimit=200Mi (repeatable)");
  cmd->add_flag("--gate", flags->gate, "Serve through the QoS gate even without limits");
  cmd->callback([flags] { RunServe(*flags); });
}

}  // namespace vdisk::cli
