// The kustomize-controller's own gRPC port: only the standard
// grpc.health.v1.Health service, so probes and grpcurl can check it the same
// way they check the source-controller.
#ifndef GITOPS_KUSTOMIZE_CONTROLLER_GRPC_HEALTH_SERVER_H_
#define GITOPS_KUSTOMIZE_CONTROLLER_GRPC_HEALTH_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::kustomize {

class HealthServer {
 public:
  // Listens on `address` (":9091", "127.0.0.1:0").
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(absl::string_view address);
  virtual ~HealthServer() = default;
  virtual int port() const = 0;
  // Reports NOT_SERVING from now on (during shutdown).
  virtual void SetNotServing() = 0;
};

}  // namespace gitops::kustomize

#endif  // GITOPS_KUSTOMIZE_CONTROLLER_GRPC_HEALTH_SERVER_H_
