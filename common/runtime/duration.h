// Go-style durations ("1m", "10m30s", "1h", "500ms") as Flux's spec fields
// (interval, timeout, retryInterval) and flags use them.
#ifndef GITOPS_COMMON_RUNTIME_DURATION_H_
#define GITOPS_COMMON_RUNTIME_DURATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gitops::common {

// Parses a Go duration: a sequence of decimal numbers with units ns, us, µs,
// ms, s, m, h (e.g. "1h30m", "1.5s"). InvalidArgument names the bad text.
absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view text);

// Formats as Go's time.Duration.String() does ("1m0s", "1h30m0s", "500ms").
std::string FormatGoDuration(absl::Duration d);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_RUNTIME_DURATION_H_
