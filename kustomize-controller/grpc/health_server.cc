#include "kustomize-controller/grpc/health_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/runtime/shutdown.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace gitops::kustomize {
namespace {

namespace health = ::grpc::health::v1;

// Health Watch streams open at once.
constexpr int kMaxWatchers = 16;

// grpc.health.v1.Health for the whole server (service name "" or
// "kustomize-controller"). gRPC's built-in health service needs another
// synchronous service on the server, and this port has none.
class HealthService final : public health::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const health::HealthCheckRequest* req,
                     health::HealthCheckResponse* resp) override {
    if (!Known(req->service())) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
    resp->set_status(Current());
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* ctx, const health::HealthCheckRequest* req,
                     grpc::ServerWriter<health::HealthCheckResponse>* writer) override {
    // Each Watch holds a sync-server thread for as long as the client keeps
    // it open: bound them (issue 17, item 7).
    if (watchers_.fetch_add(1) >= kMaxWatchers) {
      watchers_.fetch_sub(1);
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("too many health Watch streams (at most ", kMaxWatchers,
                                       "); use Check or retry later"));
    }
    struct Release {
      std::atomic<int>* n;
      ~Release() { n->fetch_sub(1); }
    } release{&watchers_};
    health::HealthCheckResponse resp;
    if (!Known(req->service())) {
      resp.set_status(health::HealthCheckResponse::SERVICE_UNKNOWN);
      writer->Write(resp);
      return grpc::Status::OK;
    }
    auto last = static_cast<health::HealthCheckResponse::ServingStatus>(-1);
    while (!ctx->IsCancelled()) {
      auto now = Current();
      if (now != last) {
        resp.set_status(now);
        if (!writer->Write(resp)) break;
        last = now;
      }
      // Wake on a status change, or every second to notice cancellation.
      absl::MutexLock lock(&mu_);
      const uint64_t seen = changes_;
      auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return changes_ != seen; };
      mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Seconds(1));
    }
    return grpc::Status::OK;
  }

  void SetNotServing() {
    serving_.store(false);
    absl::MutexLock lock(&mu_);
    ++changes_;
  }

 private:
  static bool Known(const std::string& service) {
    return service.empty() || service == "kustomize-controller";
  }
  health::HealthCheckResponse::ServingStatus Current() const {
    return serving_.load() ? health::HealthCheckResponse::SERVING
                           : health::HealthCheckResponse::NOT_SERVING;
  }
  std::atomic<bool> serving_{true};
  std::atomic<int> watchers_{0};
  absl::Mutex mu_;
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
};

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
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat(hp->host.empty() ? "0.0.0.0" : hp->host, ":", hp->port),
                             grpc::InsecureServerCredentials(), &port_);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // fail on a taken port
    // Slow or idle clients: dead peers are found by keepalive pings, a
    // connection must finish its handshake within 10 s, one with no call
    // closes after 5 min, and the sync server's threads are capped.
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 300000);
    grpc::ResourceQuota quota("kustomize-controller-grpc-health");
    quota.SetMaxThreads(kMaxWatchers + 16);
    builder.SetResourceQuota(quota);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0)
      return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
    return absl::OkStatus();
  }
  int port() const override { return port_; }
  void SetNotServing() override { service_.SetNotServing(); }

 private:
  HealthService service_;
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
