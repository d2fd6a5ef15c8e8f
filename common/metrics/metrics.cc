#include "common/metrics/metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gitops::common {
namespace {

std::string EscapeLabelValue(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string LabelKey(const MetricLabels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out.push_back(',');
    absl::StrAppend(&out, k, "=\"", EscapeLabelValue(v), "\"");
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.9g", v);
}

std::string WithLabels(absl::string_view name, absl::string_view key,
                       absl::string_view extra = "") {
  std::string labels(key);
  if (!extra.empty()) {
    if (!labels.empty()) labels.push_back(',');
    labels.append(extra.data(), extra.size());
  }
  if (labels.empty()) return std::string(name);
  return absl::StrCat(name, "{", labels, "}");
}

}  // namespace

Metrics& Metrics::Global() {
  static Metrics* registry = new Metrics();
  return *registry;
}

Metrics::Family& Metrics::FamilyLocked(absl::string_view name, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.type = type;
  }
  return it->second;
}

void Metrics::DefineCounter(absl::string_view name, absl::string_view help) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, Type::kCounter).help = std::string(help);
}

void Metrics::DefineGauge(absl::string_view name, absl::string_view help) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, Type::kGauge).help = std::string(help);
}

void Metrics::DefineHistogram(absl::string_view name, absl::string_view help,
                              std::vector<double> buckets) {
  absl::MutexLock lock(&mu_);
  Family& f = FamilyLocked(name, Type::kHistogram);
  f.help = std::string(help);
  if (f.buckets.empty()) f.buckets = std::move(buckets);
}

void Metrics::Add(absl::string_view name, const MetricLabels& labels, double value) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, Type::kCounter).series[LabelKey(labels)].value += value;
}

void Metrics::Set(absl::string_view name, const MetricLabels& labels, double value) {
  absl::MutexLock lock(&mu_);
  FamilyLocked(name, Type::kGauge).series[LabelKey(labels)].value = value;
}

void Metrics::Observe(absl::string_view name, const MetricLabels& labels, double value) {
  absl::MutexLock lock(&mu_);
  Family& f = FamilyLocked(name, Type::kHistogram);
  Series& s = f.series[LabelKey(labels)];
  if (s.bucket_counts.size() != f.buckets.size()) s.bucket_counts.assign(f.buckets.size(), 0);
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    if (value <= f.buckets[i]) ++s.bucket_counts[i];
  }
  ++s.count;
  s.sum += value;
}

void Metrics::Remove(absl::string_view name, const MetricLabels& labels) {
  absl::MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it != families_.end()) it->second.series.erase(LabelKey(labels));
}

double Metrics::Value(absl::string_view name, const MetricLabels& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto s = it->second.series.find(LabelKey(labels));
  return s == it->second.series.end() ? 0 : s->second.value;
}

std::string Metrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    if (!f.help.empty()) absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", type, "\n");
    for (const auto& [key, s] : f.series) {
      if (f.type != Type::kHistogram) {
        absl::StrAppend(&out, WithLabels(name, key), " ", FormatValue(s.value), "\n");
        continue;
      }
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        uint64_t c = i < s.bucket_counts.size() ? s.bucket_counts[i] : 0;
        absl::StrAppend(&out,
                        WithLabels(absl::StrCat(name, "_bucket"), key,
                                   absl::StrCat("le=\"", FormatValue(f.buckets[i]), "\"")),
                        " ", c, "\n");
      }
      absl::StrAppend(&out, WithLabels(absl::StrCat(name, "_bucket"), key, "le=\"+Inf\""), " ",
                      s.count, "\n");
      absl::StrAppend(&out, WithLabels(absl::StrCat(name, "_sum"), key), " ", FormatValue(s.sum),
                      "\n");
      absl::StrAppend(&out, WithLabels(absl::StrCat(name, "_count"), key), " ", s.count, "\n");
    }
  }
  return out;
}

std::vector<double> ReconcileDurationBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

}  // namespace gitops::common
