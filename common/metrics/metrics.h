// A small Prometheus registry: counters, gauges and histograms with labels,
// rendered in the text exposition format on /metrics. Thread-safe.
#ifndef GITOPS_COMMON_METRICS_METRICS_H_
#define GITOPS_COMMON_METRICS_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace gitops::common {

// Label name/value pairs, in the order the metric declares its label names.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // The process-wide registry served on /metrics.
  static Metrics& Global();

  // Declares a metric family once; later declarations of the same name are
  // ignored. Histograms take upper bounds in ascending order.
  void DefineCounter(absl::string_view name, absl::string_view help);
  void DefineGauge(absl::string_view name, absl::string_view help);
  void DefineHistogram(absl::string_view name, absl::string_view help, std::vector<double> buckets);

  // Updates one series; an undeclared name is declared untyped-as-given.
  void Add(absl::string_view name, const MetricLabels& labels, double value = 1);
  void Set(absl::string_view name, const MetricLabels& labels, double value);
  void Observe(absl::string_view name, const MetricLabels& labels, double value);
  // Removes one series (e.g. a deleted object's gauge).
  void Remove(absl::string_view name, const MetricLabels& labels);

  // Current value of a counter or gauge series (0 when absent); for tests.
  double Value(absl::string_view name, const MetricLabels& labels) const;

  // Text exposition format 0.0.4.
  std::string Render() const;

 private:
  struct Series {
    double value = 0;
    std::vector<uint64_t> bucket_counts;
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // key: rendered label set
  };
  Family& FamilyLocked(absl::string_view name, Type type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

// Flux's reconcile duration buckets (seconds).
std::vector<double> ReconcileDurationBuckets();

}  // namespace gitops::common

#endif  // GITOPS_COMMON_METRICS_METRICS_H_
