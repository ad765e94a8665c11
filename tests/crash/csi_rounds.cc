#include "tests/crash/csi_rounds.h"

#include <openssl/evp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdio>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/sync_io.h"
#include "csi/ids.h"

namespace vdisk::crash {

namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = ::csi::v1;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool Retryable(absl::StatusCode c) {
  // What the external-provisioner / -snapshotter keep retrying without giving up on the object:
  // a driver that is (re)starting, a concurrent or unfinished operation on the same object.
  return c == absl::StatusCode::kUnavailable || c == absl::StatusCode::kAborted ||
         c == absl::StatusCode::kDeadlineExceeded || c == absl::StatusCode::kCancelled ||
         c == absl::StatusCode::kUnknown || c == absl::StatusCode::kInternal ||
         c == absl::StatusCode::kResourceExhausted;
}

// Deletes are retried on any error by the sidecars; the one a kill leaves behind is "in use"
// (FAILED_PRECONDITION) until the killed process's RADOS watch times out.
bool RetryableDelete(absl::StatusCode c) {
  return Retryable(c) || c == absl::StatusCode::kFailedPrecondition;
}

// One kind of call, bound to its request: `invoke` returns the created object's id ("" for
// deletes); `apply` records a success in the model.
struct Call {
  std::string label;
  std::function<StatusOr<std::string>(csi::CsiClient&)> invoke;
  std::function<void(const std::string& id)> apply;
  std::string expect_id;  // for a create whose first attempt answered: the retry must agree
};

class Campaign {
 public:
  explicit Campaign(const CsiCampaignOptions& o) : o_(o), rng_(o.seed) {}

  CsiCampaignResult Run() {
    if (!StartDriver()) return std::move(result_);
    // A driver that cannot be restarted ends the rounds (the violation says why).
    for (int round = 0; round < o_.rounds && result_.violations.size() < 5 && driver_; ++round) {
      Round(round);
      result_.rounds = round + 1;
    }
    FinalChecks();
    if (driver_) driver_->Stop();
    return std::move(result_);
  }

 private:
  void Violation(std::string what) {
    std::fprintf(stderr, "kill9: VIOLATION: %s\n", what.c_str());
    result_.violations.push_back(std::move(what));
  }

  bool StartDriver() {
    std::vector<std::string> args = o_.driver_args;
    args.insert(args.begin(), {"--endpoint", o_.endpoint});
    driver_ = std::make_unique<csi::testing::DriverProcess>(args, o_.log_path, o_.endpoint);
    std::string error;
    if (!driver_->Start(&error)) {
      Violation("vdisk-csi did not come back after a kill: " + error);
      driver_.reset();
      return false;
    }
    return true;
  }

  double Uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  template <typename M>
  auto& Any(M& m) {
    auto it = m.begin();
    std::advance(it, Pick(m.size()));
    return *it;
  }

  // --- bytes ---------------------------------------------------------------------------------

  StatusOr<std::unique_ptr<blockdev::Device>> Open(const std::string& csi_id, bool snapshot,
                                                   bool writable) {
    auto oid = snapshot ? csi::DecodeSnapshotId(csi_id) : csi::DecodeVolumeId(csi_id);
    if (!oid.ok()) return oid.status();
    return snapshot ? o_.pool->open_snapshot(oid->local_id)
                    : o_.pool->open_volume(oid->local_id, !writable);
  }

  StatusOr<std::string> Digest(const std::string& csi_id, bool snapshot, uint64_t size) {
    ASSIGN_OR_RETURN(auto dev, Open(csi_id, snapshot, false));
    if (dev->size() < size)
      return absl::FailedPreconditionError(
          absl::StrCat(csi_id, " has ", dev->size(), " bytes, expected at least ", size));
    blockdev::AlignedBuffer buf(1 << 20);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    Status st;
    for (uint64_t off = 0; off < size && st.ok(); off += buf.size()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
      st = blockdev::ReadAt(*dev, off, {buf.data(), n});
      if (st.ok()) EVP_DigestUpdate(ctx, buf.data(), n);
    }
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    RETURN_IF_ERROR(st);
    return absl::BytesToHexString(std::string(reinterpret_cast<char*>(md), len));
  }

  // Writes 1-3 random regions into a volume and returns its new digest.
  StatusOr<std::string> Scribble(const std::string& csi_id, uint64_t size) {
    {
      ASSIGN_OR_RETURN(auto dev, Open(csi_id, false, true));
      const int regions = 1 + static_cast<int>(Pick(3));
      for (int i = 0; i < regions; ++i) {
        const uint64_t len = (64 + Pick(960)) << 10;  // 64 KiB .. 1 MiB
        const uint64_t off = Pick(static_cast<size_t>((size - len) >> 12)) << 12;
        blockdev::AlignedBuffer buf(len);
        for (size_t b = 0; b < len; b += 8) {
          uint64_t v = rng_();
          std::memcpy(buf.data() + b, &v, 8);
        }
        RETURN_IF_ERROR(blockdev::WriteAt(*dev, off, {buf.data(), len}));
      }
      RETURN_IF_ERROR(blockdev::Flush(*dev));
    }
    return Digest(csi_id, false, size);
  }

  // --- calls ---------------------------------------------------------------------------------

  v1::CreateVolumeRequest VolumeRequest(const std::string& name, uint64_t size) {
    v1::CreateVolumeRequest r;
    r.set_name(name);
    r.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(size));
    auto* cap = r.add_volume_capabilities();
    cap->mutable_block();
    cap->mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    (*r.mutable_parameters())["pool"] = o_.pool_name;
    return r;
  }

  Call CreateCall(const std::string& label, v1::CreateVolumeRequest req, std::string expect_digest) {
    Call c;
    c.label = label;
    c.invoke = [req](csi::CsiClient& cl) -> StatusOr<std::string> {
      ASSIGN_OR_RETURN(auto resp, cl.CreateVolume(req));
      return resp.volume().volume_id();
    };
    c.apply = [this, req, expect_digest](const std::string& id) {
      ModelVolume v{id, req, expect_digest, static_cast<uint64_t>(req.capacity_range().required_bytes())};
      if (expect_digest.empty()) {  // a new, empty volume: give it content of its own
        auto d = Scribble(id, v.size);
        if (!d.ok()) Violation(absl::StrCat("writing new volume ", id, ": ", d.status().ToString()));
        else v.digest = *d;
      } else {
        auto d = Digest(id, false, v.size);
        if (!d.ok()) Violation(absl::StrCat("reading ", id, ": ", d.status().ToString()));
        else if (*d != expect_digest)
          Violation(absl::StrCat(req.name(), " (", id, ") does not hold its source's bytes"));
      }
      model_.volumes[req.name()] = v;
    };
    return c;
  }

  Call PickCall(int round) {
    const size_t nv = model_.volumes.size(), ns = model_.snapshots.size();
    struct Choice {
      int weight;
      int kind;
    };
    std::vector<Choice> choices = {{nv < 3 ? 60 : nv > 8 ? 5 : 25, 0}};
    if (ns > 0) choices.push_back({15, 1});
    if (nv > 0) choices.push_back({15, 2});
    if (nv > 0) choices.push_back({ns > 6 ? 5 : 20, 3});
    if (nv > 2) choices.push_back({nv > 8 ? 40 : 12, 4});
    if (ns > 1) choices.push_back({ns > 6 ? 40 : 13, 5});
    int total = 0;
    for (auto& c : choices) total += c.weight;
    int r = static_cast<int>(Pick(static_cast<size_t>(total)));
    int kind = 0;
    for (auto& c : choices) {
      if (r < c.weight) {
        kind = c.kind;
        break;
      }
      r -= c.weight;
    }
    const std::string name = absl::StrCat("pvc-kill9-", round);
    switch (kind) {
      case 1: {  // restore a snapshot
        const auto& [sname, s] = Any(model_.snapshots);
        auto req = VolumeRequest(name, s.size);
        req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(s.id);
        return CreateCall("CreateVolume(snapshot)", req, s.digest);
      }
      case 2: {  // clone a volume (its bytes may change first)
        auto& [vname, v] = Any(model_.volumes);
        if (Pick(2)) MaybeScribble(v);
        auto req = VolumeRequest(name, v.size);
        req.mutable_volume_content_source()->mutable_volume()->set_volume_id(v.id);
        return CreateCall("CreateVolume(volume)", req, v.digest);
      }
      case 3: {  // snapshot a volume
        auto& [vname, v] = Any(model_.volumes);
        if (Pick(2)) MaybeScribble(v);
        v1::CreateSnapshotRequest req;
        req.set_name(absl::StrCat("snap-kill9-", round));
        req.set_source_volume_id(v.id);
        Call c;
        c.label = "CreateSnapshot";
        c.invoke = [req](csi::CsiClient& cl) -> StatusOr<std::string> {
          ASSIGN_OR_RETURN(auto resp, cl.CreateSnapshot(req));
          if (!resp.snapshot().ready_to_use()) return absl::UnavailableError("snapshot not ready yet");
          return resp.snapshot().snapshot_id();
        };
        const std::string digest = v.digest;
        const uint64_t size = v.size;
        c.apply = [this, req, digest, size](const std::string& id) {
          auto d = Digest(id, true, size);
          if (!d.ok()) Violation(absl::StrCat("reading snapshot ", id, ": ", d.status().ToString()));
          else if (*d != digest) Violation(absl::StrCat("snapshot ", id, " does not hold its volume's bytes"));
          model_.snapshots[req.name()] = {id, req, digest, size};
        };
        return c;
      }
      case 4: {  // delete a volume
        const auto [vname, v] = Any(model_.volumes);
        v1::DeleteVolumeRequest req;
        req.set_volume_id(v.id);
        Call c;
        c.label = "DeleteVolume";
        c.invoke = [req](csi::CsiClient& cl) -> StatusOr<std::string> {
          RETURN_IF_ERROR(cl.DeleteVolume(req).status());
          return std::string();
        };
        c.apply = [this, vname = vname](const std::string&) { model_.volumes.erase(vname); };
        return c;
      }
      case 5: {  // delete a snapshot
        const auto [sname, s] = Any(model_.snapshots);
        v1::DeleteSnapshotRequest req;
        req.set_snapshot_id(s.id);
        Call c;
        c.label = "DeleteSnapshot";
        c.invoke = [req](csi::CsiClient& cl) -> StatusOr<std::string> {
          RETURN_IF_ERROR(cl.DeleteSnapshot(req).status());
          return std::string();
        };
        c.apply = [this, sname = sname](const std::string&) { model_.snapshots.erase(sname); };
        return c;
      }
      default:
        return CreateCall("CreateVolume", VolumeRequest(name, o_.volume_bytes), "");
    }
  }

  void MaybeScribble(ModelVolume& v) {
    auto d = Scribble(v.id, v.size);
    if (!d.ok()) Violation(absl::StrCat("writing ", v.id, ": ", d.status().ToString()));
    else v.digest = *d;
  }

  // --- one round -----------------------------------------------------------------------------

  void Round(int round) {
    Call call = PickCall(round);
    Recovery& rec = result_.by_call[call.label];
    double& typical = typical_s_.try_emplace(call.label, 0.05).first->second;
    // Somewhere inside the call: early (connection, validation) as often as late.
    const double delay = Pick(8) == 0 ? Uniform(0, 0.005) : Uniform(0, typical);

    StatusOr<std::string> first = absl::UnknownError("not run");
    std::atomic<bool> answered{false};
    const auto t0 = Clock::now();
    double first_s = 0;
    std::thread caller([&] {
      first = call.invoke(driver_->client());
      first_s = Since(t0);
      answered = true;
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    driver_->Kill();
    caller.join();
    const bool finished_first = first.ok();
    if (finished_first) {
      ++rec.finished_first;
      typical = 0.8 * typical + 0.2 * first_s;
    } else {
      ++rec.killed_in_flight;
    }

    if (!StartDriver()) return;
    const auto restarted = Clock::now();
    StatusOr<std::string> got = absl::UnknownError("not run");
    for (int attempt = 0;; ++attempt) {
      const auto ta = Clock::now();
      got = call.invoke(driver_->client());
      if (got.ok()) {
        typical = 0.8 * typical + 0.2 * Since(ta);
        break;
      }
      if (std::string how; driver_->Exited(&how)) {
        // Not a kill of ours: the restarted driver crashed. Its last words are in the log.
        const std::string log = driver_->Log();
        Violation(absl::StrCat("round ", round, ": ", call.label, ": the restarted vdisk-csi died on its own (",
                               how, ") while the call was retried; log tail:\n",
                               log.substr(log.size() > 3000 ? log.size() - 3000 : 0)));
        StartDriver();  // the final checks still need a driver
        return;
      }
      if (got.status().code() == absl::StatusCode::kAborted) ++rec.aborted_answers;
      const bool is_delete = call.label.rfind("Delete", 0) == 0;
      if (!(is_delete ? RetryableDelete : Retryable)(got.status().code())) {
        Violation(absl::StrCat("round ", round, ": ", call.label, " retried after a kill answered ",
                               got.status().ToString()));
        return;
      }
      if (Since(restarted) > o_.give_up_s) {
        Violation(absl::StrCat("round ", round, ": ", call.label, " did not recover within ",
                               o_.give_up_s, " s; last answer ", got.status().ToString()));
        return;
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(o_.retry_interval_s));
    }
    const double recovery = Since(restarted);
    if (!finished_first) rec.seconds.push_back(recovery);
    if (finished_first && *first != *got)
      Violation(absl::StrCat("round ", round, ": ", call.label, " answered id ", *first,
                             " before the kill and ", *got, " after it"));
    std::printf("kill9: round %d %-24s kill at %.3f s %s, recovered in %.2f s\n", round,
                call.label.c_str(), delay, finished_first ? "(after it answered)" : "(in flight)",
                recovery);
    std::fflush(stdout);
    call.apply(*got);
  }

  // --- the end state -------------------------------------------------------------------------

  void FinalChecks() {
    if (!driver_) return;
    csi::CsiClient& cl = driver_->client();
    // Listings show exactly the live objects.
    std::set<std::string> listed, want;
    std::string token;
    do {
      v1::ListVolumesRequest req;
      req.set_max_entries(3);  // several pages
      req.set_starting_token(token);
      auto resp = cl.ListVolumes(req);
      if (!resp.ok()) return Violation("ListVolumes: " + resp.status().ToString());
      for (const auto& e : resp->entries()) listed.insert(e.volume().volume_id());
      token = resp->next_token();
    } while (!token.empty());
    for (const auto& [name, v] : model_.volumes) want.insert(v.id);
    if (listed != want)
      Violation(absl::StrCat("ListVolumes shows ", listed.size(), " volumes, the model has ",
                             want.size()));
    listed.clear();
    want.clear();
    do {
      v1::ListSnapshotsRequest req;
      req.set_max_entries(3);
      req.set_starting_token(token);
      auto resp = cl.ListSnapshots(req);
      if (!resp.ok()) return Violation("ListSnapshots: " + resp.status().ToString());
      for (const auto& e : resp->entries()) listed.insert(e.snapshot().snapshot_id());
      token = resp->next_token();
    } while (!token.empty());
    for (const auto& [name, s] : model_.snapshots) want.insert(s.id);
    if (listed != want)
      Violation(absl::StrCat("ListSnapshots shows ", listed.size(), " snapshots, the model has ",
                             want.size()));
    // Every name maps to one id (a repeat answers the same object), and the bytes are right.
    auto source_live = [&](const v1::CreateVolumeRequest& r) {
      if (!r.has_volume_content_source()) return true;
      const auto& src = r.volume_content_source();
      for (const auto& [n, v] : model_.volumes)
        if (src.has_volume() && v.id == src.volume().volume_id()) return true;
      for (const auto& [n, s] : model_.snapshots)
        if (src.has_snapshot() && s.id == src.snapshot().snapshot_id()) return true;
      return false;
    };
    for (const auto& [name, v] : model_.volumes) {
      // A repeat of a request whose source has been deleted since is rightly NOT_FOUND.
      auto again = cl.CreateVolume(v.request);
      if (source_live(v.request) && (!again.ok() || again->volume().volume_id() != v.id))
        Violation(absl::StrCat("volume name ", name, " no longer maps to ", v.id, ": ",
                               again.ok() ? again->volume().volume_id() : again.status().ToString()));
      auto d = Digest(v.id, false, v.size);
      if (!d.ok() || *d != v.digest) Violation(absl::StrCat("volume ", name, " (", v.id, ") bytes differ"));
    }
    for (const auto& [name, s] : model_.snapshots) {
      auto again = cl.CreateSnapshot(s.request);
      bool source_live = false;
      for (const auto& [n, v] : model_.volumes) source_live |= v.id == s.request.source_volume_id();
      if (source_live && (!again.ok() || again->snapshot().snapshot_id() != s.id))
        Violation(absl::StrCat("snapshot name ", name, " no longer maps to ", s.id, ": ",
                               again.ok() ? again->snapshot().snapshot_id() : again.status().ToString()));
      auto d = Digest(s.id, true, s.size);
      if (!d.ok() || *d != s.digest) Violation(absl::StrCat("snapshot ", name, " (", s.id, ") bytes differ"));
    }
    // Delete everything; nothing may remain. Deletes are retried as the sidecars retry them (on
    // any error, with backoff): an image a killed driver had open keeps that client's watch until
    // the OSDs time it out (osd_client_watch_timeout), and DeleteVolume answers "in use" till then.
    auto delete_like_a_sidecar = [&](const std::string& what, const std::function<Status()>& call) {
      const auto start = Clock::now();
      Status r;
      for (;;) {
        r = call();
        if (r.ok()) return;
        if (!RetryableDelete(r.code()) || Since(start) > o_.give_up_s) break;
        std::this_thread::sleep_for(std::chrono::duration<double>(o_.retry_interval_s));
      }
      Violation(what + ": " + r.ToString());
    };
    for (const auto& [name, s] : model_.snapshots) {
      v1::DeleteSnapshotRequest req;
      req.set_snapshot_id(s.id);
      delete_like_a_sidecar("DeleteSnapshot " + s.id, [&] { return cl.DeleteSnapshot(req).status(); });
    }
    for (const auto& [name, v] : model_.volumes) {
      v1::DeleteVolumeRequest req;
      req.set_volume_id(v.id);
      delete_like_a_sidecar("DeleteVolume " + v.id, [&] { return cl.DeleteVolume(req).status(); });
    }
    model_ = Model();
    if (!o_.pool_is_empty) return;
    const auto start = Clock::now();
    Status empty;
    do {
      empty = o_.pool_is_empty();
      if (empty.ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    } while (Since(start) < o_.settle_s);
    Violation("after deleting everything the pool is not empty: " + empty.ToString());
  }

  const CsiCampaignOptions& o_;
  std::mt19937_64 rng_;
  std::unique_ptr<csi::testing::DriverProcess> driver_;
  Model model_;
  std::map<std::string, double> typical_s_;  // how long each kind of call takes (moving average)
  CsiCampaignResult result_;
};

}  // namespace

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

CsiCampaignResult RunCsiCampaign(const CsiCampaignOptions& o) { return Campaign(o).Run(); }

}  // namespace vdisk::crash
