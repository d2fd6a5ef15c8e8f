// Where the libgit2 fetcher sends credentials (issue 17, items 3 and 8):
// only to the origin (scheme, host, port) of the GitRepository's URL. A
// redirect to another origin is followed without them, as go-git (Flux)
// does; https never redirects to http; submodules on other origins get none;
// credentials in the URL's userinfo are used as Flux uses them and never
// shown. Two nginx servers on 127.0.0.1 (different ports: different
// origins), the second recording every Authorization header it receives.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/git/test_repo.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

constexpr char kUser[] = "flux";
constexpr char kPassword[] = "s3cret-pass";
constexpr char kToken[] = "tok-abcdef123456";

// The requests in `log` (GitHttpServer::RequestLog) that carried an
// Authorization header.
std::vector<std::string> AuthorizedRequests(const std::string& log) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    if (!absl::StrContains(line, "auth=\"-\"")) out.emplace_back(line);
  }
  return out;
}

class FetcherCredentialsTest : public FetcherTest {
 protected:
  static void SetUpTestSuite() {
    auto repo = TestRepo::Create("fetch-creds");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = new TestRepo(*repo);
  }
  static void TearDownTestSuite() {
    testing::RemoveTree(repo_->root);
    delete repo_;
  }

  std::unique_ptr<testing::GitHttpServer> Serve(const testing::GitHttpServer::Options& options,
                                                const std::string& root = "") {
    auto server = testing::GitHttpServer::Start(root.empty() ? repo_->serve_root : root, options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }
  // A server that answers every request with a 302 to the same path on
  // `target`.
  std::unique_ptr<testing::GitHttpServer> Redirector(const std::string& target, bool tls = false) {
    testing::GitHttpServer::Options o;
    o.tls = tls;
    o.redirect_to = target;
    return Serve(o);
  }
  static std::string Base(const testing::GitHttpServer& server) {
    return absl::StrCat("http://127.0.0.1:", server.port(), "/");
  }
  GitFetchOptions Options(const std::string& url) {
    GitFetchOptions o;
    o.url = url;
    o.ref.branch = "main";
    o.timeout = absl::Seconds(20);
    return o;
  }
  absl::StatusOr<GitRevision> ResolveAndFetch(const GitFetchOptions& o, absl::string_view tag) {
    auto resolved = fetcher_->ResolveRemote(o);
    if (!resolved.ok()) return resolved.status();
    return fetcher_->FetchAndCheckout(o, Dir(absl::StrCat("cache-", tag)),
                                      Dir(absl::StrCat("co-", tag)));
  }

  struct CredentialCase {
    std::string name;
    std::string username, password, bearer_token;
    bool token_in_url = false;  // kToken as the url's user name instead
  };
  static std::vector<CredentialCase> CredentialCases() {
    return {
        {"basic auth", kUser, kPassword, ""},
        {"bearer token", "", "", kToken},
        {"token as the url's user name", "", "", "", true},
    };
  }
  // `base` + "repo.git" with the case's credentials.
  GitFetchOptions WithCredentials(const CredentialCase& c, const std::string& base) {
    std::string url = absl::StrCat(base, "repo.git");
    if (c.token_in_url) absl::StrReplaceAll({{"://", absl::StrCat("://", kToken, "@")}}, &url);
    GitFetchOptions o = Options(url);
    o.credentials.username = c.username;
    o.credentials.password = c.password;
    o.credentials.bearer_token = c.bearer_token;
    return o;
  }

  static TestRepo* repo_;
};

TestRepo* FetcherCredentialsTest::repo_ = nullptr;

// go-git follows the first request's redirect to another host or port and
// drops the credentials there; the fetch succeeds against a public target.
TEST_F(FetcherCredentialsTest, CrossOriginRedirectIsFollowedWithoutCredentials) {
  auto target = Serve({});
  ASSERT_NE(target, nullptr);
  auto origin = Redirector(Base(*target));
  ASSERT_NE(origin, nullptr);
  int i = 0;
  for (const CredentialCase& c : CredentialCases()) {
    SCOPED_TRACE(c.name);
    auto fetched = ResolveAndFetch(WithCredentials(c, Base(*origin)), absl::StrCat("follow", i++));
    ASSERT_TRUE(fetched.ok()) << fetched.status();
    EXPECT_EQ(fetched->commit, repo_->c4);
  }
  const std::string log = target->RequestLog();
  EXPECT_TRUE(absl::StrContains(log, "git-upload-pack")) << log;  // it served the fetches
  EXPECT_EQ(AuthorizedRequests(log), std::vector<std::string>()) << log;
}

// The attack of issue 17: the other origin asks for credentials. It gets
// none, and the error says why.
TEST_F(FetcherCredentialsTest, CrossOriginTargetAskingForCredentialsGetsNone) {
  for (const CredentialCase& c : CredentialCases()) {
    SCOPED_TRACE(c.name);
    testing::GitHttpServer::Options protect;
    if (c.bearer_token.empty()) {
      protect.username = c.token_in_url ? kToken : kUser;
      protect.password = c.token_in_url ? "" : kPassword;
    } else {
      protect.bearer_token = kToken;
    }
    auto target = Serve(protect);
    ASSERT_NE(target, nullptr);
    auto origin = Redirector(Base(*target));
    ASSERT_NE(origin, nullptr);
    GitFetchOptions o = WithCredentials(c, Base(*origin));
    for (bool fetch : {false, true}) {
      auto result = fetch ? fetcher_->FetchAndCheckout(o, Dir("cache-ask"), Dir("co-ask"))
                          : fetcher_->ResolveRemote(o);
      ASSERT_FALSE(result.ok());
      EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
      const std::string want =
          absl::StrCat("authentication required after a redirect to 127.0.0.1:", target->port(),
                       ", another origin than http://127.0.0.1:", origin->port());
      EXPECT_TRUE(absl::StrContains(result.status().message(), want)) << result.status();
      EXPECT_FALSE(absl::StrContains(result.status().message(), kToken)) << result.status();
    }
    const std::string log = target->RequestLog();
    EXPECT_TRUE(absl::StrContains(log, "info/refs")) << log;  // it was asked
    EXPECT_EQ(AuthorizedRequests(log), std::vector<std::string>()) << log;
  }
}

// A path moved on the same server (same origin) keeps the credentials.
TEST_F(FetcherCredentialsTest, SameOriginRedirectKeepsCredentials) {
  testing::GitHttpServer::Options o;
  o.username = kUser;
  o.password = kPassword;
  o.redirect_prefix = "/old/";
  o.redirect_to = "/";
  auto server = Serve(o);
  ASSERT_NE(server, nullptr);
  GitFetchOptions options = Options(absl::StrCat(Base(*server), "old/repo.git"));
  options.credentials.username = kUser;
  options.credentials.password = kPassword;
  auto fetched = ResolveAndFetch(options, "same");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->commit, repo_->c4);
  EXPECT_TRUE(absl::StrContains(server->RequestLog(), "302 GET /old/repo.git/info/refs"))
      << server->RequestLog();
}

// https never redirects to http: not with credentials, not without.
TEST_F(FetcherCredentialsTest, HttpsToHttpRedirectIsRefused) {
  auto target = Serve({});
  ASSERT_NE(target, nullptr);
  auto origin = Redirector(Base(*target), /*tls=*/true);
  ASSERT_NE(origin, nullptr);
  for (bool with_credentials : {true, false}) {
    SCOPED_TRACE(with_credentials ? "with credentials" : "without");
    GitFetchOptions o = Options(origin->Url("repo.git"));
    o.credentials.ca_pem = origin->ca_pem();
    if (with_credentials) {
      o.credentials.username = kUser;
      o.credentials.password = kPassword;
    }
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_FALSE(resolved.ok());
    EXPECT_TRUE(
        absl::StrContains(resolved.status().message(), "cannot redirect from 'https' to 'http'"))
        << resolved.status();
  }
  EXPECT_EQ(target->RequestLog(), "");  // never contacted
}

// A .gitmodules naming another origin gets none of the GitRepository's
// credentials (go-git would send them).
TEST_F(FetcherCredentialsTest, SubmoduleOnAnotherOriginGetsNoCredentials) {
  testing::GitHttpServer::Options protect;
  protect.username = kUser;
  protect.password = kPassword;
  auto other = Serve(protect);  // serves repo.git, which has c4
  ASSERT_NE(other, nullptr);

  const std::string root = Dir("parent-srv");
  ASSERT_TRUE(testing::InitBareRepo(root + "/parent.git").ok());
  auto parent = testing::GitWorkRepo::Create(Dir("parent-work"));
  ASSERT_TRUE(parent.ok()) << parent.status();
  ASSERT_TRUE(testing::WriteFile(parent->dir() + "/.gitmodules",
                                 absl::StrCat("[submodule \"lib\"]\n\tpath = lib\n\turl = ",
                                              Base(*other), "repo.git\n"))
                  .ok());
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"add", ".gitmodules"},
           {"update-index", "--add", "--cacheinfo", absl::StrCat("160000,", repo_->c4, ",lib")},
           {"commit", "--quiet", "-m", "parent"}}) {
    auto out = testing::Git(parent->dir(), args);
    ASSERT_TRUE(out.ok()) << out.status();
  }
  ASSERT_TRUE(parent->PushAll(root + "/parent.git").ok());
  auto origin = Serve(protect, root);
  ASSERT_NE(origin, nullptr);

  GitFetchOptions o = Options(origin->Url("parent.git"));
  o.credentials.username = kUser;
  o.credentials.password = kPassword;
  o.recurse_submodules = true;
  auto fetched = fetcher_->FetchAndCheckout(o, Dir("cache-sub"), Dir("co-sub"));
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnauthenticated) << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), "submodule 'lib'")) << fetched.status();
  EXPECT_EQ(AuthorizedRequests(other->RequestLog()), std::vector<std::string>())
      << other->RequestLog();
  // The parent's own origin did get them.
  EXPECT_NE(AuthorizedRequests(origin->RequestLog()), std::vector<std::string>());
}

// Flux uses the url's userinfo as basic auth when the Secret has no
// username/password: "https://TOKEN@host/..." and "https://user:pass@host".
// Errors never name the userinfo.
TEST_F(FetcherCredentialsTest, UrlUserinfoIsUsedAsBasicAuthAndNeverShown) {
  struct Case {
    std::string name, server_user, server_password, userinfo;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"user and password", kUser, kPassword, absl::StrCat(kUser, ":", kPassword), true},
      {"token as user name", kToken, "", kToken, true},
      {"wrong token", kToken, "", "tok-wrong-999999", false},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto server = Serve({false, c.server_user, c.server_password, ""});
    ASSERT_NE(server, nullptr);
    GitFetchOptions o =
        Options(absl::StrCat("http://", c.userinfo, "@127.0.0.1:", server->port(), "/repo.git"));
    auto fetched = ResolveAndFetch(o, absl::StrCat("url", i++));
    EXPECT_EQ(fetched.ok(), c.ok) << fetched.status();
    if (!fetched.ok()) {
      EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnauthenticated) << fetched.status();
      EXPECT_TRUE(absl::StrContains(fetched.status().message(),
                                    absl::StrCat("http://127.0.0.1:", server->port(), "/repo.git")))
          << fetched.status();
      EXPECT_FALSE(absl::StrContains(fetched.status().message(), "tok-")) << fetched.status();
    }
  }
}

}  // namespace
}  // namespace gitops::source
