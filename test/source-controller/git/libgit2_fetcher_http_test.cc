// The libgit2 fetcher over http and https (nginx + git http-backend): basic
// auth, bearer tokens, custom CAs.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

class FetcherHttpTest : public FetcherTest {
 protected:
  static void SetUpTestSuite() {
    auto repo = TestRepo::Create("fetch-http");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = new TestRepo(*repo);
  }
  static void TearDownTestSuite() {
    testing::RemoveTree(repo_->root);
    delete repo_;
  }

  std::unique_ptr<testing::GitHttpServer> Serve(const testing::GitHttpServer::Options& options) {
    auto server = testing::GitHttpServer::Start(repo_->serve_root, options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }
  GitFetchOptions Options(const std::string& url) {
    GitFetchOptions o;
    o.url = url;
    o.ref.branch = "main";
    o.timeout = absl::Seconds(20);
    return o;
  }
  // Resolves and fetches; returns the fetch result after checking both agree.
  absl::StatusOr<GitRevision> ResolveAndFetch(const GitFetchOptions& o, absl::string_view tag) {
    auto resolved = fetcher_->ResolveRemote(o);
    if (!resolved.ok()) return resolved.status();
    auto fetched = fetcher_->FetchAndCheckout(o, Dir(absl::StrCat("cache-", tag)),
                                              Dir(absl::StrCat("co-", tag)));
    if (fetched.ok()) EXPECT_EQ(fetched->revision, resolved->revision);
    return fetched;
  }

  static TestRepo* repo_;
};

TestRepo* FetcherHttpTest::repo_ = nullptr;

TEST_F(FetcherHttpTest, FetchesAnonymouslyOverHttp) {
  auto server = Serve({});
  ASSERT_NE(server, nullptr);
  auto fetched = ResolveAndFetch(Options(server->Url("repo.git")), "anon");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->revision, "main@sha1:" + repo_->c4);
  EXPECT_GT(fetched->received_objects, 0);
  EXPECT_GT(fetched->received_bytes, 0);
  EXPECT_EQ(*testing::ReadFile(Dir("co-anon/deploy/app.yaml")), "kind: C\n");
}

TEST_F(FetcherHttpTest, MissingRepositoryIsNotFound) {
  auto server = Serve({});
  ASSERT_NE(server, nullptr);
  auto resolved = fetcher_->ResolveRemote(Options(server->Url("nope.git")));
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kNotFound) << resolved.status();
}

TEST_F(FetcherHttpTest, BasicAuthAcceptsRightAndRefusesWrongOrMissingCredentials) {
  auto server = Serve({false, kUser, kPassword, ""});
  ASSERT_NE(server, nullptr);
  struct Case {
    std::string name;
    std::string username, password;
    absl::StatusCode code;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"right", kUser, kPassword, absl::StatusCode::kOk, ""},
      {"wrong password", kUser, "wrong-password", absl::StatusCode::kUnauthenticated,
       "wrong username or password"},
      {"wrong user", "nobody", kPassword, absl::StatusCode::kUnauthenticated,
       "wrong username or password"},
      {"missing", "", "", absl::StatusCode::kUnauthenticated, "no username/password given"},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    GitFetchOptions o = Options(server->Url("repo.git"));
    o.credentials.username = c.username;
    o.credentials.password = c.password;
    auto fetched = ResolveAndFetch(o, absl::StrCat("basic", i++));
    EXPECT_EQ(fetched.status().code(), c.code) << fetched.status();
    if (!fetched.ok()) {
      EXPECT_NE(fetched.status().message().find(c.message_part), std::string::npos)
          << fetched.status();
      EXPECT_NE(fetched.status().message().find(o.url), std::string::npos) << fetched.status();
      EXPECT_EQ(fetched.status().message().find(c.password.empty() ? "\x01" : c.password),
                std::string::npos)
          << fetched.status();
      // Same code from FetchAndCheckout alone.
      auto direct =
          fetcher_->FetchAndCheckout(o, Dir(absl::StrCat("d", i)), Dir(absl::StrCat("e", i)));
      EXPECT_EQ(direct.status().code(), c.code) << direct.status();
    } else {
      EXPECT_EQ(fetched->commit, repo_->c4);
    }
  }
}

TEST_F(FetcherHttpTest, PasswordInUrlNeverAppearsInErrors) {
  auto server = Serve({false, kUser, kPassword, ""});
  ASSERT_NE(server, nullptr);
  std::string url =
      absl::StrCat("http://", kUser, ":hunter2-wrong@127.0.0.1:", server->port(), "/repo.git");
  GitFetchOptions o = Options(url);
  o.credentials.username = kUser;
  o.credentials.password = "hunter2-wrong";
  auto fetched = ResolveAndFetch(o, "inurl");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnauthenticated) << fetched.status();
  EXPECT_EQ(fetched.status().message().find("hunter2"), std::string::npos) << fetched.status();
}

TEST_F(FetcherHttpTest, BearerTokenIsSentAsAuthorizationHeader) {
  auto server = Serve({false, "", "", kToken});
  ASSERT_NE(server, nullptr);
  GitFetchOptions o = Options(server->Url("repo.git"));
  o.credentials.bearer_token = kToken;
  auto fetched = ResolveAndFetch(o, "bearer");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->commit, repo_->c4);

  o.credentials.bearer_token = "tok-wrong-000000";
  auto wrong = ResolveAndFetch(o, "bearer-wrong");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
  EXPECT_EQ(wrong.status().message().find("tok-wrong"), std::string::npos) << wrong.status();
}

TEST_F(FetcherHttpTest, HttpsTrustsOnlyTheGivenCa) {
  auto server = Serve({true, kUser, kPassword, ""});
  ASSERT_NE(server, nullptr);
  GitFetchOptions o = Options(server->Url("repo.git"));
  o.credentials.username = kUser;
  o.credentials.password = kPassword;
  o.credentials.ca_pem = server->ca_pem();
  auto fetched = ResolveAndFetch(o, "tls");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->commit, repo_->c4);
  EXPECT_EQ(*testing::ReadFile(Dir("co-tls/README.md")), "hello\n");

  // The certificate names localhost only: by IP it does not match.
  GitFetchOptions by_ip = o;
  by_ip.url = absl::StrCat("https://127.0.0.1:", server->port(), "/repo.git");
  auto mismatch = fetcher_->ResolveRemote(by_ip);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kPermissionDenied) << mismatch.status();

  // Without the CA, and with an unrelated CA, the server is not trusted.
  auto other = Serve({true, "", "", ""});
  ASSERT_NE(other, nullptr);
  for (const std::string& ca : {std::string(), other->ca_pem()}) {
    SCOPED_TRACE(ca.empty() ? "no ca" : "other ca");
    o.credentials.ca_pem = ca;
    auto untrusted = fetcher_->ResolveRemote(o);
    ASSERT_FALSE(untrusted.ok());
    EXPECT_EQ(untrusted.status().code(), absl::StatusCode::kPermissionDenied) << untrusted.status();
    EXPECT_NE(untrusted.status().message().find("not trusted"), std::string::npos)
        << untrusted.status();
  }
}

}  // namespace
}  // namespace gitops::source
