// The operational HTTP endpoints every controller serves: /healthz (alive),
// /readyz (ready to do work) and /metrics (Prometheus text).
#ifndef GITOPS_COMMON_HTTP_ENDPOINTS_H_
#define GITOPS_COMMON_HTTP_ENDPOINTS_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/http/server_limits.h"
#include "common/metrics/metrics.h"

namespace gitops::common {

// A small HTTP server on its own thread. Slow clients cannot starve it: see
// BoundedHttpServer (bounded connections, header deadline, write timeout; a
// probe evicts a connection that has not sent its request). Thread-safe;
// stops on destruction.
class HttpEndpoints {
 public:
  // Returns OK when the process is ready; a non-OK status's message is shown
  // on /readyz with HTTP 503.
  using ReadyCheck = std::function<absl::Status()>;

  // Listens on `address` (":8080", "127.0.0.1:0"). InvalidArgument for a bad
  // address or limits, Unavailable when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpEndpoints>> Start(
      absl::string_view address, ReadyCheck ready, const Metrics* metrics,
      const HttpServerLimits& limits = DefaultLimits());
  // 16 connections in total, no per-client bound, 10 s header deadline,
  // 10 s write timeout.
  static HttpServerLimits DefaultLimits();
  virtual ~HttpEndpoints() = default;
  // The bound port (useful with port 0).
  virtual int port() const = 0;
};

}  // namespace gitops::common

#endif  // GITOPS_COMMON_HTTP_ENDPOINTS_H_
