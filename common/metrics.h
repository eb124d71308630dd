// Metrics in the Prometheus text exposition format (version 0.0.4).
//
// A registry owns metric families (counter, gauge, histogram), each with labelled series.
// Looking up a series takes a lock; updating it is lock-free. Series live as long as the
// registry, so references returned by the lookups stay valid. Keep label values bounded (route
// patterns, status codes; never raw paths or user input) or memory grows without bound.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace atelier::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class Histogram {
 public:
  // `bounds`: ascending upper bounds of the buckets; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then the +Inf count.
  std::vector<uint64_t> cumulative_counts() const;
  double sum() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative, size bounds+1
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_nanos_{0};  // sum in 1e-9 units: atomics on doubles are not portable
};

// Default latency buckets in seconds, 0.5 ms .. 10 s.
std::vector<double> latency_buckets();

class Registry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels,
                       const std::vector<double>& bounds = latency_buckets());
  // A gauge whose value is read when rendering (e.g. a store's counters).
  void callback_gauge(const std::string& name, const std::string& help,
                      std::function<double()> read);

  // The whole registry in Prometheus text format, families sorted by name.
  std::string render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram, kCallback };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // key: rendered label set
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::function<double()> callback;
  };
  Family& family(const std::string& name, const std::string& help, Type type) ATELIER_REQUIRES(mu_);

  // render() runs the callback gauges without mu_ held (they may take other locks).
  mutable Mutex mu_;
  std::map<std::string, Family> families_ ATELIER_GUARDED_BY(mu_);
};

// `{a="x",b="y"}` with Prometheus escaping; empty string for no labels.
std::string render_labels(const Labels& labels);

}  // namespace atelier::metrics
