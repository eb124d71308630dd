#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace atelier::metrics {
namespace {

TEST(MetricsTest, CounterSeriesByLabels) {
  Registry r;
  r.counter("req_total", "Requests", {{"route", "/a"}, {"status", "200"}}).inc();
  r.counter("req_total", "Requests", {{"route", "/a"}, {"status", "200"}}).inc(2);
  r.counter("req_total", "Requests", {{"route", "/b"}, {"status", "404"}}).inc();
  std::string text = r.render();
  EXPECT_NE(text.find("# HELP req_total Requests\n# TYPE req_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("req_total{route=\"/a\",status=\"200\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("req_total{route=\"/b\",status=\"404\"} 1\n"), std::string::npos) << text;
}

TEST(MetricsTest, HistogramIsCumulativeWithSumAndCount) {
  Registry r;
  auto& h = r.histogram("lat_seconds", "Latency", {{"route", "/x"}}, {0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string text = r.render();
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/x\",le=\"0.1\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count{route=\"/x\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum{route=\"/x\"} 5.55\n"), std::string::npos) << text;
}

TEST(MetricsTest, LabelValuesEscaped) {
  EXPECT_EQ(render_labels({{"a", "x\"y\\z\n"}}), "{a=\"x\\\"y\\\\z\\n\"}");
  EXPECT_EQ(render_labels({}), "");
}

TEST(MetricsTest, GaugeAndCallback) {
  Registry r;
  r.gauge("open", "Open").add(3);
  r.gauge("open", "Open").add(-1);
  r.callback_gauge("writes", "Writes", [] { return 7.0; });
  std::string text = r.render();
  EXPECT_NE(text.find("# TYPE open gauge\nopen 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("writes 7\n"), std::string::npos) << text;
}

TEST(MetricsTest, ConcurrentIncrementsAllCount) {
  Registry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) r.counter("c", "C", {{"k", "v"}}).inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.counter("c", "C", {{"k", "v"}}).value(), 40000u);
}

TEST(MetricsTest, TypeClashIsABug) {
  Registry r;
  r.counter("m", "M");
  EXPECT_THROW(r.gauge("m", "M"), std::logic_error);
}

}  // namespace
}  // namespace atelier::metrics
