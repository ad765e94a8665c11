#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace vdisk::metrics {
namespace {

TEST(Metrics, CountersAndGaugesRenderWithHelpTypeAndLabels) {
  Registry r;
  auto& calls = r.Counters("vdisk_test_calls_total", "Calls.", {"method", "code"});
  calls.With({"CreateVolume", "OK"}).Inc();
  calls.With({"CreateVolume", "OK"}).Inc(2);
  calls.With({"DeleteVolume", "NOT_FOUND"}).Inc();
  r.Gauges("vdisk_test_in_flight", "In flight.").With({}).Set(1.5);
  EXPECT_EQ(r.Render(),
            "# HELP vdisk_test_calls_total Calls.\n"
            "# TYPE vdisk_test_calls_total counter\n"
            "vdisk_test_calls_total{method=\"CreateVolume\",code=\"OK\"} 3\n"
            "vdisk_test_calls_total{method=\"DeleteVolume\",code=\"NOT_FOUND\"} 1\n"
            "# HELP vdisk_test_in_flight In flight.\n"
            "# TYPE vdisk_test_in_flight gauge\n"
            "vdisk_test_in_flight 1.5\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto& h = r.Histograms("vdisk_test_seconds", "Latency.", {"op"}, {0.1, 1});
  h.With({"read"}).Observe(0.05);
  h.With({"read"}).Observe(0.1);  // on the bound: counted in le="0.1"
  h.With({"read"}).Observe(5);
  EXPECT_EQ(r.Render(),
            "# HELP vdisk_test_seconds Latency.\n"
            "# TYPE vdisk_test_seconds histogram\n"
            "vdisk_test_seconds_bucket{op=\"read\",le=\"0.1\"} 2\n"
            "vdisk_test_seconds_bucket{op=\"read\",le=\"1\"} 2\n"
            "vdisk_test_seconds_bucket{op=\"read\",le=\"+Inf\"} 3\n"
            "vdisk_test_seconds_sum{op=\"read\"} 5.15\n"
            "vdisk_test_seconds_count{op=\"read\"} 3\n");
}

TEST(Metrics, LabelValuesAreEscapedAndRemovedChildrenDisappear) {
  Registry r;
  auto& g = r.Gauges("vdisk_test_g", "Help with \\ and\nnewline.", {"path"});
  g.With({"a\"b\\c\nd"}).Set(2);
  g.With({"gone"}).Set(1);
  g.Remove({"gone"});
  EXPECT_EQ(r.Render(),
            "# HELP vdisk_test_g Help with \\\\ and\\nnewline.\n"
            "# TYPE vdisk_test_g gauge\n"
            "vdisk_test_g{path=\"a\\\"b\\\\c\\nd\"} 2\n");
}

TEST(Metrics, CollectorsAreMergedByNameAndRemovable) {
  Registry r;
  auto one = r.AddCollector([](std::vector<Collected>& out) {
    out.push_back({"vdisk_test_pool_bytes", "Pool bytes.", Type::kGauge, {"pool"}, {{{"a"}, 10}}});
  });
  r.AddCollector([](std::vector<Collected>& out) {
    out.push_back({"vdisk_test_pool_bytes", "Pool bytes.", Type::kGauge, {"pool"}, {{{"b"}, 20}}});
  });
  EXPECT_EQ(r.Render(),
            "# HELP vdisk_test_pool_bytes Pool bytes.\n"
            "# TYPE vdisk_test_pool_bytes gauge\n"
            "vdisk_test_pool_bytes{pool=\"a\"} 10\n"
            "vdisk_test_pool_bytes{pool=\"b\"} 20\n");
  r.RemoveCollector(one);
  EXPECT_EQ(r.Render().find("pool=\"a\""), std::string::npos);
}

TEST(Metrics, SameNameReturnsTheSameFamily) {
  Registry r;
  r.Counters("vdisk_test_c", "C.", {"x"}).With({"1"}).Inc();
  r.Counters("vdisk_test_c", "C.", {"x"}).With({"1"}).Inc();
  EXPECT_EQ(r.Counters("vdisk_test_c", "C.", {"x"}).With({"1"}).value(), 2u);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Registry r;
  auto& c = r.Counters("vdisk_test_n", "N.", {"t"});
  auto& h = r.Histograms("vdisk_test_h", "H.");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.With({"x"}).Inc();
        h.With({}).Observe(0.001);
        if (i % 100 == 0) (void)r.Render();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.With({"x"}).value(), 40000u);
  EXPECT_EQ(h.With({}).snapshot().count, 40000u);
}

TEST(MetricsDeath, WrongLabelCountAborts) {
  Registry r;
  auto& c = r.Counters("vdisk_test_bad", "B.", {"a", "b"});
  EXPECT_DEATH(c.With({"only-one"}), "label values");
}

}  // namespace
}  // namespace vdisk::metrics
