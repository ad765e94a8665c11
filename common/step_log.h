// StepLog: wall time of the named steps of one operation, logged as one debug line when it ends
// ("rbd pool ceph: create_snapshot snap1: lock 1.2 ms, reserve 0.9 ms, ... total 14.8 ms").
// For finding where a control-plane call spends its time (RADOS round trips) without a tracer.
// Costs two clock reads per step; logs nothing unless the debug level is on. Not thread-safe:
// one operation on one thread.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

namespace vdisk {

class StepLog {
 public:
  explicit StepLog(std::string what) : what_(std::move(what)), start_(Clock::now()), last_(start_) {}
  ~StepLog() {
    if (!spdlog::should_log(spdlog::level::debug)) return;
    std::string line = what_ + ":";
    for (const auto& [name, ms] : steps_) line += " " + name + " " + Ms(ms) + ",";
    line += " total " + Ms(Since(start_));
    spdlog::debug("{}", line);
  }
  StepLog(const StepLog&) = delete;
  StepLog& operator=(const StepLog&) = delete;

  // Ends the current step under `name` (the time since the previous Step() or the start).
  void Step(const char* name) {
    const auto now = Clock::now();
    steps_.emplace_back(name, std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double Since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  }
  static std::string Ms(double ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
    return buf;
  }
  std::string what_;
  Clock::time_point start_, last_;
  std::vector<std::pair<std::string, double>> steps_;
};

}  // namespace vdisk
