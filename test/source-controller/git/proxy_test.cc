#include "source-controller/git/proxy.h"

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

TEST(ParseProxyTest, SchemesPortsAndCredentials) {
  auto http = ParseProxy({"http://proxy.local:3128/", "u", "p"});
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_EQ(http->scheme, "http");
  EXPECT_EQ(http->host, "proxy.local");
  EXPECT_EQ(http->port, 3128);
  EXPECT_EQ(http->username, "u");
  EXPECT_EQ(http->password, "p");
  EXPECT_EQ(http->Url(), "http://proxy.local:3128");

  auto defaults = ParseProxy({"HTTPS://p", "", ""});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->scheme, "https");
  EXPECT_EQ(defaults->port, 443);
  EXPECT_EQ(ParseProxy({"http://p", "", ""})->port, 80);
  EXPECT_EQ(ParseProxy({"socks5://p", "", ""})->port, 1080);

  auto userinfo = ParseProxy({"socks5://a:b@[::1]:1081", "", ""});
  ASSERT_TRUE(userinfo.ok()) << userinfo.status();
  EXPECT_EQ(userinfo->host, "::1");
  EXPECT_EQ(userinfo->port, 1081);
  EXPECT_EQ(userinfo->username, "a");
  EXPECT_EQ(userinfo->password, "b");
  EXPECT_EQ(userinfo->Url(), "socks5://[::1]:1081");
  // The Secret's keys win over userinfo in the address.
  auto keys = ParseProxy({"http://a:b@p:1", "c", "d"});
  EXPECT_EQ(keys->username, "c");
  EXPECT_EQ(keys->password, "d");
}

TEST(ParseProxyTest, RejectsBadAddressesWithoutRepeatingThem) {
  for (const char* bad :
       {"", "proxy:3128", "ftp://p:21", "http://", "http://:1", "http://p:0", "http://p:65536",
        "http://p:x", "http://p/path", "http://p :1", "http://[::1"}) {
    auto p = ParseProxy({bad, "", ""});
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto secret = ParseProxy({"gopher://user:topsecret@p", "", ""});
  ASSERT_FALSE(secret.ok());
  EXPECT_EQ(secret.status().message().find("topsecret"), absl::string_view::npos);
}

TEST(SelectProxyModeTest, FollowsTheRemoteScheme) {
  ProxyEndpoint http = *ParseProxy({"http://p:1", "", ""});
  ProxyEndpoint https = *ParseProxy({"https://p:1", "", ""});
  ProxyEndpoint socks = *ParseProxy({"socks5://p:1", "", ""});
  EXPECT_EQ(*SelectProxyMode("https", nullptr), ProxyMode::kNone);
  EXPECT_EQ(*SelectProxyMode("file", &http), ProxyMode::kNone);
  EXPECT_EQ(*SelectProxyMode("https", &http), ProxyMode::kConnect);
  EXPECT_EQ(*SelectProxyMode("https", &https), ProxyMode::kLibgit2);
  EXPECT_EQ(*SelectProxyMode("http", &http), ProxyMode::kForward);
  EXPECT_EQ(*SelectProxyMode("ssh", &socks), ProxyMode::kSocks5);
  EXPECT_EQ(*SelectProxyMode("http", &socks), ProxyMode::kSocks5);
  EXPECT_EQ(*SelectProxyMode("git", &socks), ProxyMode::kSocks5);
  EXPECT_EQ(SelectProxyMode("http", &https).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SelectProxyMode("ssh", &http).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SelectProxyMode("git", &https).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gitops::source
