#include "common/http/limit_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/http/endpoints.h"
#include "common/runtime/duration.h"

ABSL_FLAG(std::string, http_read_header_timeout, "10s",
          "Time a client of the HTTP ports has from connecting (or, on a kept-alive connection, "
          "from its next request's first byte) to send the whole request line and headers; a "
          "slower connection is closed.");
ABSL_FLAG(std::string, http_write_timeout, "60s",
          "An HTTP response (e.g. an artifact download) whose client takes no bytes for this long "
          "is cut and its connection closed.");
ABSL_FLAG(int, endpoints_max_connections, 16,
          "Connections the metrics and the health ports each keep open at once. At the bound, a "
          "new connection (a probe) replaces one that has not sent a whole request.");

namespace gitops::common {

absl::Status ApplyHttpTimeoutFlags(HttpServerLimits* limits) {
  auto header = ParseGoDuration(absl::GetFlag(FLAGS_http_read_header_timeout));
  if (!header.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-read-header-timeout: ", header.status().message()));
  }
  auto write = ParseGoDuration(absl::GetFlag(FLAGS_http_write_timeout));
  if (!write.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-write-timeout: ", write.status().message()));
  }
  limits->read_header_timeout = *header;
  limits->write_timeout = *write;
  return absl::OkStatus();
}

absl::StatusOr<HttpServerLimits> EndpointLimitsFromFlags() {
  HttpServerLimits limits = HttpEndpoints::DefaultLimits();
  absl::Status s = ApplyHttpTimeoutFlags(&limits);
  if (!s.ok()) return s;
  limits.max_connections = absl::GetFlag(FLAGS_endpoints_max_connections);
  s = ValidateHttpServerLimits(limits);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http-read-header-timeout, --http-write-timeout, --endpoints-max-connections: ",
        s.message()));
  }
  return limits;
}

}  // namespace gitops::common
