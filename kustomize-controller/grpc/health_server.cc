#include "kustomize-controller/grpc/health_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "common/runtime/shutdown.h"

namespace gitops::kustomize {
namespace {

class GrpcHealthServer : public HealthServer {
 public:
  ~GrpcHealthServer() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_->Wait();
    }
  }
  absl::Status Build(absl::string_view address) {
    auto hp = common::ParseHostPort(address);
    if (!hp.ok()) return hp.status();
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat(hp->host.empty() ? "0.0.0.0" : hp->host, ":", hp->port),
                             grpc::InsecureServerCredentials(), &port_);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
    return absl::OkStatus();
  }
  int port() const override { return port_; }
  void SetNotServing() override { server_->GetHealthCheckService()->SetServingStatus(false); }

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(absl::string_view address) {
  auto server = std::make_unique<GrpcHealthServer>();
  absl::Status s = server->Build(address);
  if (!s.ok()) return s;
  return std::unique_ptr<HealthServer>(std::move(server));
}

}  // namespace gitops::kustomize
