// Flux's reconcile metrics, on Metrics::Global():
//   gotk_reconcile_duration_seconds{kind,name,namespace}   histogram
//   gotk_reconcile_condition{kind,name,namespace,type,status} gauge: 1 for the
//     object's current status of `type`, 0 for the other statuses
//     (True, False, Unknown, Deleted), like fluxcd/pkg/runtime/metrics.
//   gotk_suspend_status{kind,name,namespace}                gauge
// Thread-safe.
#ifndef GITOPS_COMMON_CONTROLLER_RECONCILE_METRICS_H_
#define GITOPS_COMMON_CONTROLLER_RECONCILE_METRICS_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace gitops::common {

void RecordReconcileDuration(const nlohmann::json& obj, absl::Duration duration);
// Records the object's Ready condition (or Unknown when it has none).
void RecordReadyCondition(const nlohmann::json& obj);
// Marks the object's series Deleted (after its finalizer ran).
void RecordDeleted(const nlohmann::json& obj);
void RecordSuspend(const nlohmann::json& obj, bool suspended);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_CONTROLLER_RECONCILE_METRICS_H_
