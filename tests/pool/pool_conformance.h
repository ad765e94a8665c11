// The pool conformance suite: one set of cases every blockdev::Pool must pass (create/get/list/
// delete, idempotent repeats, name collisions, expand, snapshots, clones through clone/, change
// maps through snapshot/, restart, crash leftovers, hostile ids and names, concurrency).
//
// To run it against a backend, subclass PoolFixture and instantiate the suite with it:
//
//   class RbdFixture : public vdisk::pooltest::PoolFixture {
//    public:
//     Status SetUp() override;                                  // fresh, empty pool storage
//     StatusOr<std::shared_ptr<blockdev::Pool>> Open() override;  // open it from its config
//     void TearDown() override;                                 // remove everything it made
//   };
//   INSTANTIATE_TEST_SUITE_P(Rbd, PoolConformance,
//       ::testing::Values(vdisk::pooltest::PoolBackend{
//           "rbd", [] { return std::make_unique<RbdFixture>(); }}),
//       vdisk::pooltest::BackendName);
//
// Open() is called again by the restart cases (the old Pool object is destroyed first), so it
// must build a new Pool from the same configuration, as a restarted driver would. The optional
// hooks below let a backend opt into the checks that need to look at its storage; a case whose
// hook is not provided is skipped with the reason. Each case gets its own fixture (SetUp ...
// TearDown), so cases may run in parallel processes if storage is unique per fixture.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::pooltest {

class PoolFixture {
 public:
  virtual ~PoolFixture() = default;
  virtual Status SetUp() = 0;
  virtual StatusOr<std::shared_ptr<blockdev::Pool>> Open() = 0;
  virtual void TearDown() = 0;

  // Optional. Leaves on the storage what interrupted operations would (half-built objects,
  // orphaned data, torn metadata writes) WITHOUT going through the Pool; the suite then reopens
  // the pool and checks that none of it is visible and that LeftoversGone() holds.
  // UNIMPLEMENTED (the default) skips the crash-leftover case.
  virtual Status MakeCrashLeftovers() { return absl::UnimplementedError("no crash hook"); }
  virtual bool LeftoversGone() { return true; }

  // Optional. A host directory that holds all of the pool's data ("" if the pool keeps no data
  // on the host, e.g. RBD). Used to check that hostile names and ids never create files
  // outside it.
  virtual std::string HostRoot() { return ""; }
};

struct PoolBackend {
  std::string name;  // test name suffix: [A-Za-z0-9_]
  std::function<std::unique_ptr<PoolFixture>()> make;
};

std::string BackendName(const ::testing::TestParamInfo<PoolBackend>& info);
void PrintTo(const PoolBackend& b, std::ostream* os);

class PoolConformance : public ::testing::TestWithParam<PoolBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Drops the Pool and opens a new one through the fixture (a driver restart).
  void Reopen();
  // A size that is a multiple of the pool's granularity, at least `min_bytes`.
  uint64_t SizeAtLeast(uint64_t min_bytes) const;
  // Creates a Block volume (or fails the test).
  blockdev::Volume MakeVolume(const std::string& name, uint64_t size,
                              blockdev::VolumeMode mode = blockdev::VolumeMode::kBlock);

  std::unique_ptr<PoolFixture> fixture_;
  std::shared_ptr<blockdev::Pool> pool_;
  blockdev::Capabilities caps_;
};

}  // namespace vdisk::pooltest
