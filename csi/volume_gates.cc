#include "csi/volume_gates.h"

#include "blockdev/qos/gated_device.h"
#include "blockdev/qos/qos_limits.h"
#include "csi/ids.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

namespace {

// Sets the gate's limits from the volume's stored mutable parameters, if they changed.
void LoadLimits(blockdev::Pool& pool, const std::string& local_id, blockdev::qos::IoGate& gate) {
  auto vol = pool.get_volume(local_id);
  if (!vol.ok()) {
    spdlog::debug("io gate {}: cannot read the volume's QoS: {}", gate.name(), vol.status().ToString());
    return;
  }
  auto limits = blockdev::qos::ParseQosParams(vol->mutable_params);
  if (!limits.ok()) {
    spdlog::warn("io gate {}: stored mutable parameters are invalid, keeping the current QoS: {}", gate.name(),
                 limits.status().ToString());
    return;
  }
  if (!(*limits == gate.limits())) gate.SetLimits(*limits);
}

// Hold requests from other processes (Pool::watch_write_holds) land on the gate.
class GateHoldSink final : public blockdev::WriteHoldSink {
 public:
  explicit GateHoldSink(std::weak_ptr<blockdev::qos::IoGate> gate) : gate_(std::move(gate)) {}
  StatusOr<std::shared_ptr<void>> HoldWrites() override {
    auto gate = gate_.lock();
    if (!gate) return absl::NotFoundError("the volume is no longer exported here");
    return gate->Hold();
  }

 private:
  std::weak_ptr<blockdev::qos::IoGate> gate_;
};

}  // namespace

blockdev::vhost::VolumeOpener GatedOpener(DriverContext& ctx, std::shared_ptr<blockdev::Pool> pool,
                                          const std::string& csi_id, const std::string& local_id) {
  return [&ctx, pool, csi_id, local_id](bool read_only) -> StatusOr<std::unique_ptr<blockdev::Device>> {
    ASSIGN_OR_RETURN(auto dev, pool->open_volume(local_id, read_only));
    auto gate = ctx.io_gates().Get(csi_id);
    LoadLimits(*pool, local_id, *gate);
    if (pool->capabilities().write_holds && !gate->attached()) {
      auto watch = pool->watch_write_holds(local_id, std::make_shared<GateHoldSink>(gate));
      if (watch.ok()) gate->Attach(std::move(*watch));
      else spdlog::warn("io gate {}: other processes cannot hold its writes for group snapshots: {}", csi_id,
                        watch.status().ToString());
    }
    return blockdev::qos::GateDevice(std::move(dev), std::move(gate));
  };
}

QosRefresher::QosRefresher(std::shared_ptr<DriverContext> ctx, int interval_seconds)
    : ctx_(std::move(ctx)), thread_(std::chrono::seconds(interval_seconds), [this] { RefreshOnce(); }) {}

void QosRefresher::RefreshOnce() {
  for (const auto& [csi_id, gate] : ctx_->io_gates().List()) {
    auto oid = DecodeVolumeId(csi_id);
    if (!oid.ok()) continue;
    // The node calls' identity: the pool's own, else the secrets NodeStageVolume kept.
    auto kept = ctx_->node_credentials().Load(csi_id);
    auto pool = ctx_->PoolForId(oid->pool, kept.ok() ? *kept : kNoCallSecrets);
    if (!pool.ok()) continue;
    LoadLimits(**pool, oid->local_id, *gate);
  }
}

}  // namespace vdisk::csi
