#include "source-controller/git/git_url.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

TEST(GitUrlTest, AcceptsSupportedSchemesAndLocalPaths) {
  struct Case {
    std::string url, scheme, user, host;
    int port;
    std::string path;
    int effective_port;
  };
  const std::vector<Case> cases = {
      {"https://github.com/org/repo.git", "https", "", "github.com", 0, "/org/repo.git", 443},
      {"http://127.0.0.1:8080/repo", "http", "", "127.0.0.1", 8080, "/repo", 8080},
      {"HTTPS://user:secret@localhost:8443/x", "https", "user", "localhost", 8443, "/x", 8443},
      {"ssh://git@example.com/org/repo.git", "ssh", "git", "example.com", 0, "/org/repo.git", 22},
      {"ssh://git@[::1]:2222/repo", "ssh", "git", "::1", 2222, "/repo", 2222},
      {"git://127.0.0.1:9418/repo.git", "git", "", "127.0.0.1", 9418, "/repo.git", 9418},
      {"file:///srv/git/repo.git", "file", "", "", 0, "/srv/git/repo.git", 0},
      {"/srv/git/repo.git", "file", "", "", 0, "/srv/git/repo.git", 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    auto u = ParseGitUrl(c.url);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ(u->scheme, c.scheme);
    EXPECT_EQ(u->username, c.user);
    EXPECT_EQ(u->host, c.host);
    EXPECT_EQ(u->port, c.port);
    EXPECT_EQ(u->path, c.path);
    EXPECT_EQ(EffectivePort(*u), c.effective_port);
  }
  EXPECT_TRUE(ParseGitUrl("/srv/repo")->local_path);
  EXPECT_FALSE(ParseGitUrl("file:///srv/repo")->local_path);
}

TEST(GitUrlTest, RejectsEverythingElseWithoutLeakingPasswords) {
  struct Case {
    std::string url;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"ftp://host/repo", "unsupported git url scheme \"ftp\""},
      {"s3://bucket/key", "unsupported git url scheme \"s3\""},
      {"git@github.com:org/repo.git", "scp-like"},
      {"relative/path", "unsupported git url"},
      {"https:///repo", "missing host"},
      {"https://user:hunter2@/repo", "missing host"},
      {"https://host:99999/repo", "bad port"},
      {"https://host:abc/repo", "bad port"},
      {"https://host:/repo", "bad port"},
      {"https://host/re po", "whitespace"},
      {"file://relative", "absolute path"},
      {"ssh://[::1/repo", "ipv6"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    auto u = ParseGitUrl(c.url);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(u.status().message().find(c.message_part), std::string::npos) << u.status();
    EXPECT_EQ(u.status().message().find("hunter2"), std::string::npos) << u.status();
  }
}

TEST(GitUrlTest, RedactUrlDropsOnlyThePassword) {
  EXPECT_EQ(RedactUrl("https://user:secret@host/x"), "https://user@host/x");
  EXPECT_EQ(RedactUrl("https://token:x-oauth@host:8443/a@b"), "https://token@host:8443/a@b");
  EXPECT_EQ(RedactUrl("ssh://git@host/x"), "ssh://git@host/x");
  EXPECT_EQ(RedactUrl("https://host/x"), "https://host/x");
  EXPECT_EQ(RedactUrl("/srv/repo"), "/srv/repo");
}

}  // namespace
}  // namespace gitops::source
