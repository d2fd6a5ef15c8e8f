#include "source-controller/git/deadline_stream.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace gitops::source::internal {
namespace {

TEST(ParseConnectTargetTest, ReadsTheAuthorityOfAConnectRequest) {
  struct Case {
    std::string request;
    std::optional<std::string> host, port;
  };
  const std::vector<Case> cases = {
      {"CONNECT localhost:8443 HTTP/1.1\r\nHost: localhost:8443\r\n\r\n", "localhost", "8443"},
      {"CONNECT [::1]:443 HTTP/1.1\r\n", "::1", "443"},
      {"CONNECT example.com:443", "example.com", "443"},
      {"GET http://example.com/ HTTP/1.1\r\n", std::nullopt, std::nullopt},
      {"CONNECT example.com HTTP/1.1\r\n", std::nullopt, std::nullopt},
      {"CONNECT example.com: HTTP/1.1\r\n", std::nullopt, std::nullopt},
      {"CONNECT :443 HTTP/1.1\r\n", std::nullopt, std::nullopt},
      {"", std::nullopt, std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request);
    std::optional<HostPort> got = ParseConnectTarget(c.request);
    ASSERT_EQ(got.has_value(), c.host.has_value());
    if (got) {
      EXPECT_EQ(got->host, *c.host);
      EXPECT_EQ(got->port, *c.port);
    }
  }
}

TEST(NetworkOperationTest, RestrictedToAnOriginRefusesAndNotesOtherTargets) {
  NetworkOperation op(absl::Now() + absl::Seconds(30));
  EXPECT_TRUE(op.AllowsTarget("anywhere", "1"));  // unrestricted
  EXPECT_EQ(op.refused_target(), "");

  op.RestrictToOrigin("Git.Example", "443");
  EXPECT_TRUE(op.AllowsTarget("git.example", "443"));  // host case does not matter
  EXPECT_FALSE(op.AllowsTarget("git.example", "8443"));
  EXPECT_FALSE(op.AllowsTarget("evil.example", "443"));
  EXPECT_EQ(op.refused_target(), "git.example:8443");  // the first one

  op.Unrestrict();
  EXPECT_TRUE(op.AllowsTarget("evil.example", "443"));
  EXPECT_EQ(op.refused_target(), "git.example:8443");

  NetworkOperation v6(absl::Now() + absl::Seconds(30));
  v6.RestrictToOrigin("::1", "80");
  EXPECT_FALSE(v6.AllowsTarget("::2", "80"));
  EXPECT_EQ(v6.refused_target(), "[::2]:80");
}

}  // namespace
}  // namespace gitops::source::internal
