// Status conditions the way Flux writes them (fluxcd/pkg/runtime/conditions):
// metav1.Condition entries in status.conditions, lastTransitionTime changing
// only when the status flips, observedGeneration stamped from
// metadata.generation, and Ready / Reconciling / Stalled kept consistent.
// Pure functions over JSON objects; thread-compatible.
#ifndef GITOPS_COMMON_CONTROLLER_CONDITIONS_H_
#define GITOPS_COMMON_CONTROLLER_CONDITIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace gitops::common {

inline constexpr char kReadyCondition[] = "Ready";
inline constexpr char kReconcilingCondition[] = "Reconciling";
inline constexpr char kStalledCondition[] = "Stalled";
inline constexpr char kConditionTrue[] = "True";
inline constexpr char kConditionFalse[] = "False";
inline constexpr char kConditionUnknown[] = "Unknown";

// Flux's common reasons.
inline constexpr char kSucceededReason[] = "Succeeded";
inline constexpr char kFailedReason[] = "Failed";
inline constexpr char kProgressingReason[] = "Progressing";
inline constexpr char kProgressingWithRetryReason[] = "ProgressingWithRetry";
inline constexpr char kDependencyNotReadyReason[] = "DependencyNotReady";
inline constexpr char kReconciliationSucceededReason[] = "ReconciliationSucceeded";
inline constexpr char kReconciliationFailedReason[] = "ReconciliationFailed";

struct Condition {
  std::string type;
  std::string status;  // True | False | Unknown
  std::string reason;
  std::string message;
};

// Sets (or replaces) condition `c.type` in obj.status.conditions.
// lastTransitionTime = `now` only when the type is new or its status changed;
// observedGeneration = metadata.generation. Ready is kept first, then
// Reconciling, then Stalled, then others in insertion order.
void SetCondition(nlohmann::json& obj, const Condition& c, absl::Time now);
void RemoveCondition(nlohmann::json& obj, absl::string_view type);
// The condition object, or nullptr.
const nlohmann::json* FindCondition(const nlohmann::json& obj, absl::string_view type);
bool IsConditionTrue(const nlohmann::json& obj, absl::string_view type);

// Flux's summary for the end of a reconcile:
//  * OK: Ready=True (reason, message), Reconciling and Stalled removed.
//  * InvalidArgument: Stalled=True and Ready=False with `failure_reason`; no retry.
//  * other errors: Ready=False with `failure_reason`, Reconciling=True
//    (ProgressingWithRetry), Stalled removed.
// Also sets status.observedGeneration = metadata.generation.
void SummarizeReady(nlohmann::json& obj, const absl::Status& result, absl::string_view ok_reason,
                    absl::string_view ok_message, absl::string_view failure_reason, absl::Time now);

// JSON merge patch (RFC 7386) that turns `before` into `after`; {} if equal.
nlohmann::json CreateMergePatch(const nlohmann::json& before, const nlohmann::json& after);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_CONTROLLER_CONDITIONS_H_
