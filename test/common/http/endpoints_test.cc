// The /healthz, /readyz and /metrics endpoints over real loopback sockets.
#include "common/http/endpoints.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
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

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Waits up to `timeout` for the server to close `fd` (reading and dropping
// whatever it answered first). False if it is still open.
bool WaitClosedByServer(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1) <= 0) {
      continue;
    }
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
  return false;
}

TEST(HttpEndpointsTest, IncompleteHeadersAreCutAtTheDeadline) {
  HttpServerLimits limits = HttpEndpoints::DefaultLimits();
  limits.read_header_timeout = absl::Milliseconds(300);
  auto server = HttpEndpoints::Start("127.0.0.1:0", nullptr, nullptr, limits);
  ASSERT_TRUE(server.ok()) << server.status();
  const int fd = Connect((*server)->port());
  ASSERT_GE(fd, 0);
  const absl::Time start = absl::Now();
  const std::string partial = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a";
  ASSERT_EQ(send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  EXPECT_TRUE(WaitClosedByServer(fd, absl::Seconds(20)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  close(fd);
}

TEST(HttpEndpointsTest, AProbeEvictsAClientThatHasNotSentItsRequest) {
  HttpServerLimits limits = HttpEndpoints::DefaultLimits();
  limits.max_connections = 2;
  limits.read_header_timeout = absl::Seconds(60);
  auto server = HttpEndpoints::Start("127.0.0.1:0", nullptr, nullptr, limits);
  ASSERT_TRUE(server.ok()) << server.status();
  const int slow1 = Connect((*server)->port());
  const int slow2 = Connect((*server)->port());
  ASSERT_GE(slow1, 0);
  ASSERT_GE(slow2, 0);
  for (int fd : {slow1, slow2}) ASSERT_EQ(send(fd, "GET /", 5, MSG_NOSIGNAL), 5);
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(10, 0);
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  // The older slow connection made room.
  EXPECT_TRUE(WaitClosedByServer(slow1, absl::Seconds(10)));
  close(slow1);
  close(slow2);
}

TEST(HttpEndpointsTest, OversizedRequestsAreRefused) {
  auto server = HttpEndpoints::Start("127.0.0.1:0", nullptr, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  const int fd = Connect((*server)->port());
  ASSERT_GE(fd, 0);
  std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i) request += "X-Filler: " + std::string(1000, 'a') + "\r\n";
  // The server may close before it has read everything.
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  EXPECT_TRUE(WaitClosedByServer(fd, absl::Seconds(20)));
  close(fd);
}

TEST(HttpEndpointsTest, BadLimitsAreRefused) {
  HttpServerLimits limits;
  limits.max_connections = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(
      HttpEndpoints::Start("127.0.0.1:0", nullptr, nullptr, limits).status()));
  limits = HttpServerLimits();
  limits.read_header_timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(
      HttpEndpoints::Start("127.0.0.1:0", nullptr, nullptr, limits).status()));
}

}  // namespace
}  // namespace gitops::common
