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

TEST(GitUrlTest, RedactUrlDropsTheWholeUserinfo) {
  struct Case {
    std::string url, want;
  };
  const std::vector<Case> cases = {
      {"https://user:secret@host/x", "https://host/x"},
      // A token given as the user name (issue 17 item 8).
      {"http://ghp_TOKEN123456@host/x", "http://host/x"},
      {"https://token:x-oauth@host:8443/a@b", "https://host:8443/a@b"},
      {"ssh://git@host/x", "ssh://host/x"},
      {"https://host/x", "https://host/x"},
      {"https://host", "https://host"},
      {"https://a@b@host/x", "https://host/x"},       // two '@': up to the last
      {"https://us er:pw@host/x", "https://host/x"},  // invalid (space), still redacted
      {"/srv/repo", "/srv/repo"},
      {"git@github.com:org/repo.git", "git@github.com:org/repo.git"},  // no "://": untouched
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    EXPECT_EQ(RedactUrl(c.url), c.want);
  }
}

TEST(GitUrlTest, ErrorsNameTheUrlWithoutUserinfo) {
  for (const char* url : {"file://tok3n-abcdef@x", "https://tok3n-abcdef@host:0/x",
                          "https://tok3n-abcdef:pw@host/re po"}) {
    SCOPED_TRACE(url);
    auto u = ParseGitUrl(url);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.status().message().find("tok3n"), std::string::npos) << u.status();
  }
}

TEST(GitUrlTest, UserinfoIsPercentDecoded) {
  auto u = ParseGitUrl("https://us%40er:p%3Ass%2@host/x");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->username, "us@er");
  EXPECT_EQ(u->password, "p:ss%2");  // a malformed escape stays
  EXPECT_TRUE(u->has_password);
  auto token = ParseGitUrl("https://TOKEN@host/x");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->username, "TOKEN");
  EXPECT_EQ(token->password, "");
  EXPECT_FALSE(token->has_password);
}

TEST(GitUrlTest, OriginIsSchemeHostAndEffectivePort) {
  struct Case {
    std::string url, origin;
  };
  const std::vector<Case> cases = {
      {"https://GitHub.com/org/repo", "https://github.com:443"},
      {"https://github.com:443/org/repo", "https://github.com:443"},
      {"http://user:pw@127.0.0.1:8080/x", "http://127.0.0.1:8080"},
      {"http://[::1]/x", "http://[::1]:80"},
      {"ssh://git@host/x", "ssh://host:22"},
      {"file:///srv/x", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    auto u = ParseGitUrl(c.url);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ(UrlOrigin(*u), c.origin);
  }
  EXPECT_NE(UrlOrigin(*ParseGitUrl("http://h/x")), UrlOrigin(*ParseGitUrl("https://h/x")));
  EXPECT_NE(UrlOrigin(*ParseGitUrl("http://h:1/x")), UrlOrigin(*ParseGitUrl("http://h:2/x")));
}

// fluxcd/pkg git NewAuthOptions: the url's user name and password fill in
// what the Secret leaves empty, field by field, for http(s) only.
TEST(GitUrlTest, UrlCredentialsFillInWhatTheSecretLacks) {
  struct Case {
    std::string name, url, secret_user, secret_password, want_user, want_password;
  };
  const std::vector<Case> cases = {
      {"no secret", "https://u:p@h/x", "", "", "u", "p"},
      {"token as user", "https://TOKEN@h/x", "", "", "TOKEN", ""},
      {"secret user wins", "https://u:p@h/x", "s", "", "s", "p"},
      {"secret password wins", "https://u:p@h/x", "", "sp", "u", "sp"},
      {"secret wins", "https://u:p@h/x", "s", "sp", "s", "sp"},
      {"no userinfo", "https://h/x", "s", "sp", "s", "sp"},
      {"ssh user is the login", "ssh://git@h/x", "", "", "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    GitCredentials secret;
    secret.username = c.secret_user;
    secret.password = c.secret_password;
    secret.bearer_token = "bt";
    GitCredentials got = WithUrlCredentials(*ParseGitUrl(c.url), secret);
    EXPECT_EQ(got.username, c.want_user);
    EXPECT_EQ(got.password, c.want_password);
    EXPECT_EQ(got.bearer_token, "bt");
  }
}

TEST(GitUrlTest, HttpCredentialsAreUserPasswordOrBearer) {
  GitCredentials c;
  EXPECT_FALSE(HasHttpCredentials(c));
  c.ca_pem = "pem";
  c.ssh_identity = "key";
  EXPECT_FALSE(HasHttpCredentials(c));
  for (std::string GitCredentials::*field :
       {&GitCredentials::username, &GitCredentials::password, &GitCredentials::bearer_token}) {
    GitCredentials one;
    one.*field = "x";
    EXPECT_TRUE(HasHttpCredentials(one));
  }
}

}  // namespace
}  // namespace gitops::source
