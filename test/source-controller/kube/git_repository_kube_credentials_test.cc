// Where the source-controller binary sends a GitRepository's credentials
// (issue 17, items 3 and 8): a git server that redirects to another origin
// (another port on 127.0.0.1) never hands that origin the Secret's basic
// auth or bearer token; credentials in spec.url are used as Flux uses them
// and never shown in status, Events or logs.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "test/source-controller/kube/kube_fixture.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

constexpr char kUser[] = "flux";
constexpr char kPassword[] = "s3cr3t-pass-41c9";
constexpr char kToken[] = "tok-bearer-9f2e1d";
constexpr char kUrlToken[] = "ghp-url-token-77d3a1";

// Lines of a GitHttpServer::RequestLog that carried an Authorization header.
std::vector<std::string> AuthorizedRequests(const std::string& log) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    if (!absl::StrContains(line, "auth=\"-\"")) out.emplace_back(line);
  }
  return out;
}

class GitRepositoryKubeCredentialsTest : public SourceKubeTest {
 protected:
  void SetUp() override {
    SourceKubeTest::SetUp();
    if (HasFatalFailure()) return;
    CreateRepo();
    auto sha = repo_->Commit("first", {{"apps/cm.yaml", "kind: ConfigMap\n"}});
    ASSERT_TRUE(sha.ok()) << sha.status();
    first_ = *sha;
  }
  std::unique_ptr<GitHttpServer> Serve(const GitHttpServer::Options& options) {
    auto server = GitHttpServer::Start(dir_ + "/srv", options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }
  static std::string Base(const GitHttpServer& server) {
    return absl::StrCat("http://127.0.0.1:", server.port(), "/");
  }

  std::string first_;
};

TEST_F(GitRepositoryKubeCredentialsTest, RedirectToAnotherOriginNeverCarriesCredentials) {
  auto open_target = Serve({});
  ASSERT_NE(open_target, nullptr);
  GitHttpServer::Options protect;
  protect.username = kUser;
  protect.password = kPassword;
  auto asking_target = Serve(protect);
  ASSERT_NE(asking_target, nullptr);
  GitHttpServer::Options to_open, to_asking;
  to_open.redirect_to = Base(*open_target);
  to_asking.redirect_to = Base(*asking_target);
  auto open_origin = Serve(to_open);
  auto asking_origin = Serve(to_asking);
  ASSERT_NE(open_origin, nullptr);
  ASSERT_NE(asking_origin, nullptr);

  CreateSecret("basic", {{"username", kUser}, {"password", kPassword}});
  CreateSecret("bearer", {{"bearerToken", kToken}});
  StartController();
  const std::string ref = "  interval: 1m\n  ref:\n    branch: main\n";
  Apply("follow-basic", Base(*open_origin) + "repo.git", ref + "  secretRef:\n    name: basic\n");
  Apply("follow-bearer", Base(*open_origin) + "repo.git", ref + "  secretRef:\n    name: bearer\n");
  Apply("asked-basic", Base(*asking_origin) + "repo.git", ref + "  secretRef:\n    name: basic\n");
  Apply("asked-bearer", Base(*asking_origin) + "repo.git",
        ref + "  secretRef:\n    name: bearer\n");

  // As go-git (Flux): the redirect is followed, without the credentials.
  WaitForRevision("follow-basic", "main@sha1:" + first_);
  WaitForRevision("follow-bearer", "main@sha1:" + first_);
  const std::string target = absl::StrCat("127.0.0.1:", asking_target->port());
  const std::string origin = absl::StrCat("http://127.0.0.1:", asking_origin->port());
  for (const char* name : {"asked-basic", "asked-bearer"}) {
    SCOPED_TRACE(name);
    ExpectFailure(name, {"FetchFailed",
                         "GitOperationFailed",
                         {"failed to checkout and determine revision",
                          absl::StrCat("authentication required after a redirect to ", target,
                                       ", another origin than ", origin),
                          "credentials are only sent to the url's origin"}});
  }
  EXPECT_TRUE(absl::StrContains(open_target->RequestLog(), "git-upload-pack"))
      << open_target->RequestLog();
  EXPECT_TRUE(absl::StrContains(asking_target->RequestLog(), "info/refs"))
      << asking_target->RequestLog();
  EXPECT_EQ(AuthorizedRequests(open_target->RequestLog()), std::vector<std::string>())
      << open_target->RequestLog();
  EXPECT_EQ(AuthorizedRequests(asking_target->RequestLog()), std::vector<std::string>())
      << asking_target->RequestLog();
  ExpectNoLeak({kPassword, kToken});
}

// Flux (fluxcd/pkg git NewAuthOptions) uses the url's user name and password
// as basic auth where the Secret has none; a token given as the user name
// is one. Status, Events and logs show the url without its userinfo.
TEST_F(GitRepositoryKubeCredentialsTest, CredentialsInUrlAreUsedAndNeverShown) {
  GitHttpServer::Options token_auth;
  token_auth.username = kUrlToken;
  auto token_server = Serve(token_auth);
  ASSERT_NE(token_server, nullptr);
  GitHttpServer::Options basic_auth;
  basic_auth.username = kUser;
  basic_auth.password = kPassword;
  auto basic_server = Serve(basic_auth);
  ASSERT_NE(basic_server, nullptr);
  StartController();
  const std::string ref = "  interval: 1m\n  ref:\n    branch: main\n";
  const std::string token_host = absl::StrCat("127.0.0.1:", token_server->port());
  Apply("token-url", absl::StrCat("http://", kUrlToken, "@", token_host, "/repo.git"), ref);
  Apply("userpass-url",
        absl::StrCat("http://", kUser, ":", kPassword, "@127.0.0.1:", basic_server->port(),
                     "/repo.git"),
        ref);
  Apply("token-url-missing", absl::StrCat("http://", kUrlToken, "@", token_host, "/missing.git"),
        ref);
  Apply("token-url-bad-ref", absl::StrCat("http://", kUrlToken, "@", token_host, "/repo.git"),
        "  interval: 1m\n  ref:\n    branch: nope\n");

  WaitForRevision("token-url", "main@sha1:" + first_);
  WaitForRevision("userpass-url", "main@sha1:" + first_);
  ExpectFailure(
      "token-url-missing",
      {"FetchFailed", "GitOperationFailed", {absl::StrCat("http://", token_host, "/missing.git")}});
  ExpectFailure("token-url-bad-ref", {"FetchFailed",
                                      "GitOperationFailed",
                                      {absl::StrCat("http://", token_host, "/repo.git"), "nope"}});
  WaitForEvent("token-url-missing", "Warning", "GitOperationFailed");
  ExpectNoLeak({kUrlToken, kPassword});
}

}  // namespace
}  // namespace gitops::testing
