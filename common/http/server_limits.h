// Limits of our HTTP servers (artifact file server, health and metrics
// endpoints), without the cpp-httplib dependency of the server itself.
#ifndef GITOPS_COMMON_HTTP_SERVER_LIMITS_H_
#define GITOPS_COMMON_HTTP_SERVER_LIMITS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace gitops::common {

// Per-connection limits of a BoundedHttpServer.
struct HttpServerLimits {
  // A request line and its headers must have arrived this long after the
  // connection was accepted (first request) or after the request's first
  // byte (later requests on a keep-alive connection). Not reset by progress:
  // a client trickling a byte a second is cut off all the same.
  absl::Duration read_header_timeout = absl::Seconds(10);
  // A write (response bytes) that makes no progress for this long closes
  // the connection.
  absl::Duration write_timeout = absl::Seconds(60);
  // How long a keep-alive connection waits for its next request.
  absl::Duration idle_timeout = absl::Seconds(5);
  // Connections open at once; at least 1.
  int max_connections = 64;
  // Connections open at once from one client IP address; 0 = no limit.
  int max_connections_per_client = 0;
  // Bytes a request (line, headers and any body) may have.
  size_t max_request_bytes = 64 << 10;
};

// InvalidArgument naming the field when a limit is out of range
// (non-positive durations or max_connections, negative per-client limit).
absl::Status ValidateHttpServerLimits(const HttpServerLimits& limits);

}  // namespace gitops::common

#endif  // GITOPS_COMMON_HTTP_SERVER_LIMITS_H_
