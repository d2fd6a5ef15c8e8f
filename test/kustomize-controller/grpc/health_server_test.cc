// The kustomize-controller's grpc.health.v1.Health server over loopback.
#include "kustomize-controller/grpc/health_server.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace gitops::kustomize {
namespace {

namespace health = ::grpc::health::v1;

TEST(HealthServerTest, CheckAndWatchReportServingThenNotServing) {
  auto server = HealthServer::Start("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = health::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext check_ctx;
  health::HealthCheckRequest req;
  health::HealthCheckResponse resp;
  ASSERT_TRUE(stub->Check(&check_ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), health::HealthCheckResponse::SERVING);

  grpc::ClientContext watch_ctx;
  auto watch = stub->Watch(&watch_ctx, req);
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), health::HealthCheckResponse::SERVING);
  (*server)->SetNotServing();
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), health::HealthCheckResponse::NOT_SERVING);
  watch_ctx.TryCancel();
  (void)watch->Finish();
}

// Each Watch holds a server thread while open: past the bound they are
// refused (issue 17, item 7), and Check still answers.
TEST(HealthServerTest, WatchStreamsAreBounded) {
  auto server = HealthServer::Start("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = health::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
  health::HealthCheckRequest req;
  health::HealthCheckResponse resp;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<health::HealthCheckResponse>>> watches;
  grpc::Status refused;
  for (int i = 0; i < 64 && refused.ok(); ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    auto watch = stub->Watch(contexts.back().get(), req);
    if (watch->Read(&resp)) {
      watches.push_back(std::move(watch));
    } else {
      refused = watch->Finish();
    }
  }
  EXPECT_EQ(watches.size(), 16u);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "too many health Watch streams"));
  grpc::ClientContext check_ctx;
  ASSERT_TRUE(stub->Check(&check_ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), health::HealthCheckResponse::SERVING);
  for (size_t i = 0; i < watches.size(); ++i) contexts[i]->TryCancel();
  for (auto& w : watches) (void)w->Finish();
}

}  // namespace
}  // namespace gitops::kustomize
