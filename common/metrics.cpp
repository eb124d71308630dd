#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace atelier::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(static_cast<int64_t>(std::llround(v * 1e9)), std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double Histogram::sum() const {
  return static_cast<double>(sum_nanos_.load()) / 1e9;
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\')
        out += "\\\\";
      else if (c == '"')
        out += "\\\"";
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

Registry::Family& Registry::family(const std::string& name, const std::string& help, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + name + " registered with two types");
  }
  return it->second;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(mu_);
  auto& slot = family(name, help, Type::kCounter).counters[render_labels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(mu_);
  auto& slot = family(name, help, Type::kGauge).gauges[render_labels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const Labels& labels, const std::vector<double>& bounds) {
  MutexLock lock(mu_);
  auto& slot = family(name, help, Type::kHistogram).histograms[render_labels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

void Registry::callback_gauge(const std::string& name, const std::string& help,
                              std::function<double()> read) {
  MutexLock lock(mu_);
  family(name, help, Type::kCallback).callback = std::move(read);
}

namespace {
std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// Inserts `le="..."` into a rendered label set.
std::string with_le(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}
}  // namespace

std::string Registry::render() const {
  // The callback gauges run outside mu_: they take their owners' locks (JobService's), and those
  // owners' callers look series up (RequestRecorder) while holding them, which under mu_ would be
  // a lock-order inversion (ThreadSanitizer found it on GET /metrics).
  std::vector<std::pair<std::string, std::function<double()>>> callbacks;
  {
    MutexLock lock(mu_);
    for (const auto& [name, f] : families_) {
      if (f.type == Type::kCallback && f.callback) callbacks.emplace_back(name, f.callback);
    }
  }
  std::map<std::string, double> values;
  for (const auto& [name, read] : callbacks) values[name] = read();

  MutexLock lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter     ? "counter"
                       : f.type == Type::kHistogram ? "histogram"
                                                    : "gauge";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, type);
    switch (f.type) {
      case Type::kCounter:
        for (const auto& [labels, c] : f.counters) {
          out += fmt::format("{}{} {}\n", name, labels, c->value());
        }
        break;
      case Type::kGauge:
        for (const auto& [labels, g] : f.gauges) {
          out += fmt::format("{}{} {}\n", name, labels, g->value());
        }
        break;
      case Type::kCallback:
        // A gauge registered since the values were read has none yet: no sample this time.
        if (auto it = values.find(name); it != values.end()) {
          out += fmt::format("{} {}\n", name, format_double(it->second));
        }
        break;
      case Type::kHistogram:
        for (const auto& [labels, h] : f.histograms) {
          auto counts = h->cumulative_counts();
          for (size_t i = 0; i < h->bounds().size(); ++i) {
            out += fmt::format("{}_bucket{} {}\n", name,
                               with_le(labels, format_double(h->bounds()[i])), counts[i]);
          }
          out += fmt::format("{}_bucket{} {}\n", name, with_le(labels, "+Inf"), counts.back());
          out += fmt::format("{}_sum{} {}\n", name, labels, format_double(h->sum()));
          out += fmt::format("{}_count{} {}\n", name, labels, counts.back());
        }
        break;
    }
  }
  return out;
}

}  // namespace atelier::metrics
