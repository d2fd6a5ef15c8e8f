// The /healthz, /readyz and /metrics endpoints over real loopback sockets.
#include "common/http/endpoints.h"

#include <httplib.h>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace gitops::common {
namespace {

TEST(HttpEndpointsTest, ServesHealthReadinessAndMetrics) {
  bool ready = false;
  auto server = HttpEndpoints::Start(
      "127.0.0.1:0",
      [&] { return ready ? absl::OkStatus() : absl::UnavailableError("cache not synced"); },
      nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "not ready: cache not synced\n");
  ready = true;
  auto now_ready = client.Get("/readyz");
  ASSERT_TRUE(now_ready);
  EXPECT_EQ(now_ready->status, 200);
}

// Two processes (or servers) on one port is a configuration error, not a
// silently shared port (cpp-httplib sets SO_REUSEPORT unless told not to).
TEST(HttpEndpointsTest, ATakenPortIsAnError) {
  auto first = HttpEndpoints::Start("127.0.0.1:0", nullptr, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second =
      HttpEndpoints::Start("127.0.0.1:" + std::to_string((*first)->port()), nullptr, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
}

// Stopping right after starting must not hang (cpp-httplib drops a stop()
// that comes before its accept loop runs).
TEST(HttpEndpointsTest, StopRightAfterStartReturns) {
  for (int i = 0; i < 50; ++i) {
    auto server = HttpEndpoints::Start("127.0.0.1:0", nullptr, nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
  }
}

}  // namespace
}  // namespace gitops::common
