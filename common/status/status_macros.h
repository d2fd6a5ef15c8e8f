// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status, which Debian's
// Abseil 20220623 does not provide. Defined once here for the whole project.
#ifndef GITOPS_COMMON_STATUS_STATUS_MACROS_H_
#define GITOPS_COMMON_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GITOPS_STATUS_CONCAT_INNER_(a, b) a##b
#define GITOPS_STATUS_CONCAT_(a, b) GITOPS_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the caller if not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status gitops_status_ = (expr);          \
    if (!gitops_status_.ok()) return gitops_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from
// the caller, otherwise move-assigns the value to `lhs` (which may declare).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  GITOPS_ASSIGN_OR_RETURN_IMPL_(GITOPS_STATUS_CONCAT_(gitops_statusor_, __LINE__), lhs, rexpr)

#define GITOPS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

namespace gitops::common {

// Returns `status` with `context: ` prepended to its message, same code and
// payloads. OK stays OK.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_STATUS_STATUS_MACROS_H_
