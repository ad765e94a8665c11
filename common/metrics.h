// Prometheus metrics: counters, gauges and histograms with labels, rendered in the Prometheus
// text exposition format (version 0.0.4) by Registry::Render().
//
// A family (one metric name, one help text, fixed label names) hands out children by label
// values; a child's address is stable until Remove(), so hot paths keep a pointer and update it
// with one relaxed atomic operation. Families live as long as their Registry (the process-wide
// Default() is never destroyed). Collectors are callbacks run at render time for values that are
// cheaper to read than to track (pool capacity, progress of long operations).
// Thread-safe throughout. Names and label names must match [a-zA-Z_:][a-zA-Z0-9_:]*; a bad name
// or a label-value count that does not match the family is a programming error (abort).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vdisk::metrics {

using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d) { v_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double v);
  // Cumulative counts per bound (then +Inf), sum and count, read without stopping writers.
  struct Snapshot {
    std::vector<uint64_t> cumulative;
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_->size() + 1 (+Inf)
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Latency buckets in seconds, 100 us .. 60 s: I/O, RPCs and long storage operations alike.
const std::vector<double>& LatencyBuckets();

enum class Type { kCounter, kGauge, kHistogram };

// One sample set produced by a collector: a gauge or counter family with its values.
struct Collected {
  std::string name, help;
  Type type = Type::kGauge;
  std::vector<std::string> label_names;
  std::vector<std::pair<LabelValues, double>> samples;
};

template <typename T>
class Family {
 public:
  // The child for these label values, created on first use. The reference stays valid until
  // Remove() of the same values.
  T& With(const LabelValues& values) { return *Share(values); }
  // The same child, kept alive by the caller even after Remove() (then it is no longer rendered).
  std::shared_ptr<T> Share(const LabelValues& values);
  // Stops rendering a child (e.g. a volume whose export stopped).
  void Remove(const LabelValues& values);

 private:
  friend class Registry;
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
         std::vector<double> bounds = {});
  std::string name_, help_;
  Type type_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<LabelValues, std::shared_ptr<T>> children_;
};

class Registry {
 public:
  static Registry& Default();

  // The family with this name, created on first use; later calls with the same name return the
  // same family (the help, type and label names must agree).
  Family<Counter>& Counters(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {});
  Family<Gauge>& Gauges(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {});
  Family<Histogram>& Histograms(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names = {},
                                std::vector<double> bounds = LatencyBuckets());

  // Runs `fn` at every Render(); returns a handle for RemoveCollector.
  using CollectFn = std::function<void(std::vector<Collected>&)>;
  uint64_t AddCollector(CollectFn fn);
  void RemoveCollector(uint64_t handle);

  // Every family and collector, sorted by metric name, in the text exposition format.
  std::string Render() const;

 private:
  template <typename T>
  Family<T>& Get(std::map<std::string, std::unique_ptr<Family<T>>>& m, const std::string& name,
                 const std::string& help, Type type, std::vector<std::string> label_names,
                 std::vector<double> bounds);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family<Counter>>> counters_;
  std::map<std::string, std::unique_ptr<Family<Gauge>>> gauges_;
  std::map<std::string, std::unique_ptr<Family<Histogram>>> histograms_;
  std::map<uint64_t, CollectFn> collectors_;
  uint64_t next_collector_ = 1;
};

// Keeps a gauge child at +1 while alive (operations in flight).
class InFlight {
 public:
  explicit InFlight(Gauge& g) : g_(&g) { g_->Add(1); }
  ~InFlight() { g_->Add(-1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Gauge* g_;
};

}  // namespace vdisk::metrics
