#include "common/controller/reconcile_metrics.h"

#include <string>

#include "common/controller/conditions.h"
#include "common/metrics/metrics.h"
#include "common/yaml/yaml.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;

MetricLabels ObjectLabels(const json& obj) {
  return {{"kind", common::StringAt(obj, {"kind"})},
          {"name", common::StringAt(obj, {"metadata", "name"})},
          {"namespace", common::StringAt(obj, {"metadata", "namespace"})}};
}

void Define() {
  static const bool once = [] {
    Metrics& m = Metrics::Global();
    m.DefineHistogram("gotk_reconcile_duration_seconds",
                      "The duration in seconds of a GitOps Toolkit resource reconciliation.",
                      ReconcileDurationBuckets());
    m.DefineGauge("gotk_reconcile_condition",
                  "The current condition status of a GitOps Toolkit resource reconciliation.");
    m.DefineGauge("gotk_suspend_status",
                  "The current suspend status of a GitOps Toolkit resource.");
    return true;
  }();
  (void)once;
}

void SetConditionSeries(const json& obj, const std::string& current) {
  Metrics& m = Metrics::Global();
  for (const char* status : {kConditionTrue, kConditionFalse, kConditionUnknown, "Deleted"}) {
    MetricLabels labels = ObjectLabels(obj);
    labels.emplace_back("type", kReadyCondition);
    labels.emplace_back("status", status);
    m.Set("gotk_reconcile_condition", labels, current == status ? 1 : 0);
  }
}

}  // namespace

void RecordReconcileDuration(const json& obj, absl::Duration duration) {
  Define();
  Metrics::Global().Observe("gotk_reconcile_duration_seconds", ObjectLabels(obj),
                            absl::ToDoubleSeconds(duration));
}

void RecordReadyCondition(const json& obj) {
  Define();
  const json* ready = FindCondition(obj, kReadyCondition);
  std::string status = kConditionUnknown;
  if (ready != nullptr && ready->contains("status") && (*ready)["status"].is_string()) {
    status = (*ready)["status"].get<std::string>();
  }
  SetConditionSeries(obj, status);
}

void RecordDeleted(const json& obj) {
  Define();
  SetConditionSeries(obj, "Deleted");
}

void RecordSuspend(const json& obj, bool suspended) {
  Define();
  Metrics::Global().Set("gotk_suspend_status", ObjectLabels(obj), suspended ? 1 : 0);
}

}  // namespace gitops::common
