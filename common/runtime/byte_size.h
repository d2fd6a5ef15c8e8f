// Byte sizes in flags ("0", "500000", "100Mi", "2G"), with Kubernetes
// quantity suffixes.
#ifndef GITOPS_COMMON_RUNTIME_BYTE_SIZE_H_
#define GITOPS_COMMON_RUNTIME_BYTE_SIZE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::common {

// Parses a non-negative whole number of bytes with an optional suffix:
// binary Ki, Mi, Gi, Ti (powers of 1024) or decimal k, M, G, T (powers of
// 1000), as Kubernetes quantities spell them. InvalidArgument, naming the
// text, for anything else (signs, fractions, spaces, unknown suffixes) and
// for values past INT64_MAX.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_RUNTIME_BYTE_SIZE_H_
