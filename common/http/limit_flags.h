// The command-line flags both controllers share for their HTTP ports:
// --http-read-header-timeout, --http-write-timeout and
// --endpoints-max-connections (metrics and health ports), defined once here.
#ifndef GITOPS_COMMON_HTTP_LIMIT_FLAGS_H_
#define GITOPS_COMMON_HTTP_LIMIT_FLAGS_H_

#include "absl/status/statusor.h"
#include "common/http/server_limits.h"

namespace gitops::common {

// Sets read_header_timeout and write_timeout of `limits` from the flags.
// InvalidArgument naming the flag when one does not parse.
absl::Status ApplyHttpTimeoutFlags(HttpServerLimits* limits);

// HttpEndpoints::DefaultLimits() with the timeout flags and
// --endpoints-max-connections applied, validated. InvalidArgument naming the
// flags on a bad value.
absl::StatusOr<HttpServerLimits> EndpointLimitsFromFlags();

}  // namespace gitops::common

#endif  // GITOPS_COMMON_HTTP_LIMIT_FLAGS_H_
