// The libgit2 fetcher through proxies (spec.proxySecretRef) on loopback:
// tinyproxy in front of nginx + git http-backend (http forward requests and
// https CONNECT, with proxy basic auth), and OpenSSH's SOCKS5 dynamic
// forwarding for ssh (and http) remotes.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/git/test_repo.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

constexpr char kProxyUser[] = "proxy-user";
constexpr char kProxyPassword[] = "proxy-pass-123";

class FetcherProxyTest : public FetcherTest {
 protected:
  static void SetUpTestSuite() {
    auto repo = TestRepo::Create("fetch-proxy");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = new TestRepo(*repo);
    auto http = testing::GitHttpServer::Start(repo_->serve_root, {});
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = http->release();
    auto proxy = testing::TinyProxy::Start({kProxyUser, kProxyPassword});
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = proxy->release();
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete http_;
    testing::RemoveTree(repo_->root);
    delete repo_;
  }

  GitFetchOptions Options(const std::string& url) {
    GitFetchOptions o;
    o.url = url;
    o.ref.branch = "main";
    o.timeout = absl::Seconds(20);
    o.proxy.address = proxy_->Address();
    o.proxy.username = kProxyUser;
    o.proxy.password = kProxyPassword;
    return o;
  }
  absl::StatusOr<GitRevision> Fetch(const GitFetchOptions& o, absl::string_view tag) {
    return fetcher_->FetchAndCheckout(o, Dir(absl::StrCat("cache-", tag)),
                                      Dir(absl::StrCat("co-", tag)));
  }
  // Proxy log lines added since `before` (a previous ReadLog()).
  static std::string NewLog(const std::string& before) {
    std::string now = proxy_->ReadLog();
    return now.size() >= before.size() ? now.substr(before.size()) : now;
  }

  static TestRepo* repo_;
  static testing::GitHttpServer* http_;
  static testing::TinyProxy* proxy_;
};

TestRepo* FetcherProxyTest::repo_ = nullptr;
testing::GitHttpServer* FetcherProxyTest::http_ = nullptr;
testing::TinyProxy* FetcherProxyTest::proxy_ = nullptr;

TEST_F(FetcherProxyTest, HttpRemoteGoesThroughTheProxy) {
  GitFetchOptions o = Options(http_->Url("repo.git"));
  std::string before = proxy_->ReadLog();
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(resolved.ok()) << resolved.status() << "\n" << NewLog(before);
  EXPECT_EQ(resolved->revision, "main@sha1:" + repo_->c4);
  auto fetched = Fetch(o, "http");
  ASSERT_TRUE(fetched.ok()) << fetched.status() << "\n" << NewLog(before);
  EXPECT_EQ(fetched->revision, "main@sha1:" + repo_->c4);
  EXPECT_EQ(*testing::ReadFile(Dir("co-http/deploy/app.yaml")), "kind: C\n");
  // tinyproxy saw the ls-remote and the upload-pack POST as forward requests.
  std::string log = NewLog(before);
  std::string prefix = absl::StrCat("http://127.0.0.1:", http_->port(), "/repo.git/");
  EXPECT_TRUE(
      absl::StrContains(log, absl::StrCat("GET ", prefix, "info/refs?service=git-upload-pack")))
      << log;
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("POST ", prefix, "git-upload-pack"))) << log;
}

TEST_F(FetcherProxyTest, WrongProxyPasswordIsUnauthenticatedAndNamesTheProxy) {
  GitFetchOptions o = Options(http_->Url("repo.git"));
  o.proxy.password = "wrong-proxy-password";
  for (int i = 0; i < 2; ++i) {
    absl::Status status = i == 0 ? fetcher_->ResolveRemote(o).status() : Fetch(o, "wrong").status();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "proxy " + proxy_->Address())) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), kProxyUser)) << status;
    EXPECT_FALSE(absl::StrContains(status.message(), "wrong-proxy-password")) << status;
  }
  o.proxy.username.clear();
  o.proxy.password.clear();
  auto none = fetcher_->ResolveRemote(o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated) << none.status();
  EXPECT_TRUE(absl::StrContains(none.status().message(), "no proxy username/password"))
      << none.status();
}

TEST_F(FetcherProxyTest, UnreachableProxyIsUnavailableAndNamesTheProxy) {
  GitFetchOptions o = Options(http_->Url("repo.git"));
  o.proxy.address = absl::StrCat("http://127.0.0.1:", testing::PickFreePort());
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kUnavailable) << resolved.status();
  EXPECT_TRUE(absl::StrContains(resolved.status().message(), "proxy " + o.proxy.address))
      << resolved.status();
  auto fetched = Fetch(o, "unreachable");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable) << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), "proxy " + o.proxy.address))
      << fetched.status();
}

TEST_F(FetcherProxyTest, ProxyThatCannotReachTheRemoteIsUnavailable) {
  GitFetchOptions o =
      Options(absl::StrCat("http://127.0.0.1:", testing::PickFreePort(), "/repo.git"));
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kUnavailable) << resolved.status();
  EXPECT_TRUE(absl::StrContains(resolved.status().message(), "proxy")) << resolved.status();
}

TEST_F(FetcherProxyTest, HttpsRemoteGoesThroughTheProxyWithConnect) {
  auto https = testing::GitHttpServer::Start(repo_->serve_root, {true, "flux", "git-pass", ""});
  ASSERT_TRUE(https.ok()) << https.status();
  GitFetchOptions o = Options((*https)->Url("repo.git"));
  o.credentials.username = "flux";
  o.credentials.password = "git-pass";
  o.credentials.ca_pem = (*https)->ca_pem();
  std::string before = proxy_->ReadLog();
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  auto fetched = Fetch(o, "https");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->revision, "main@sha1:" + repo_->c4);
  EXPECT_EQ(*testing::ReadFile(Dir("co-https/deploy/app.yaml")), "kind: C\n");
  std::string log = NewLog(before);
  EXPECT_TRUE(
      absl::StrContains(log, absl::StrCat("CONNECT localhost:", (*https)->port(), " HTTP/1.1")))
      << log;

  o.proxy.password = "wrong-proxy-password";
  auto wrong = Fetch(o, "https-wrong");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "proxy " + proxy_->Address()))
      << wrong.status();

  // The git server's own credentials are still checked behind the proxy.
  o.proxy.password = kProxyPassword;
  o.credentials.password = "wrong-git-pass";
  auto git_wrong = fetcher_->ResolveRemote(o);
  ASSERT_FALSE(git_wrong.ok());
  EXPECT_EQ(git_wrong.status().code(), absl::StatusCode::kUnauthenticated) << git_wrong.status();
  EXPECT_FALSE(absl::StrContains(git_wrong.status().message(), "proxy authentication"))
      << git_wrong.status();
}

// A redirect to another origin behind the proxy is followed without the
// credentials (issue 17 item 3), whether our stream opens the CONNECT
// tunnel (https remote) or libgit2 does (http remote redirected to https:
// the target is then only in libgit2's CONNECT request).
TEST_F(FetcherProxyTest, RedirectToAnotherOriginBehindTheProxyCarriesNoCredentials) {
  auto target = testing::GitHttpServer::Start(repo_->serve_root, {true, "", "", ""});
  ASSERT_TRUE(target.ok()) << target.status();
  int i = 0;
  for (bool tls_origin : {true, false}) {
    SCOPED_TRACE(tls_origin ? "https origin" : "http origin");
    testing::GitHttpServer::Options redirect;
    redirect.tls = tls_origin;
    redirect.redirect_to = absl::StrCat("https://localhost:", (*target)->port(), "/");
    auto origin = testing::GitHttpServer::Start(repo_->serve_root, redirect);
    ASSERT_TRUE(origin.ok()) << origin.status();
    GitFetchOptions o = Options((*origin)->Url("repo.git"));
    o.credentials.bearer_token = "tok-proxy-redirect-1234";
    o.credentials.ca_pem = (*origin)->ca_pem() + (*target)->ca_pem();
    std::string before = proxy_->ReadLog();
    auto fetched = Fetch(o, absl::StrCat("redirect", i++));
    if (tls_origin) {
      ASSERT_TRUE(fetched.ok()) << fetched.status() << "\n" << NewLog(before);
      EXPECT_EQ(fetched->revision, "main@sha1:" + repo_->c4);
    }
    // (An http remote redirected to https through a forward proxy fails
    // with "unexpected EOF" in libgit2 1.5, credentials or not; what matters
    // here is that the target never sees the token.)
    std::string log = NewLog(before);
    EXPECT_TRUE(
        absl::StrContains(log, absl::StrCat("CONNECT localhost:", (*target)->port(), " HTTP/1.1")))
        << log;
  }
  const std::string served = (*target)->RequestLog();
  EXPECT_TRUE(absl::StrContains(served, "git-upload-pack")) << served;
  EXPECT_FALSE(absl::StrContains(served, "Bearer")) << served;
}

TEST_F(FetcherProxyTest, SilentProxyHitsTheDeadline) {
  auto silent = testing::SilentTcpListener::Create();
  ASSERT_TRUE(silent.ok()) << silent.status();
  for (const char* scheme : {"http", "socks5"}) {
    GitFetchOptions o = Options("https://localhost:1/repo.git");
    o.proxy.address = absl::StrCat(scheme, "://127.0.0.1:", (*silent)->port());
    o.timeout = absl::Seconds(1);
    absl::Time start = absl::Now();
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_FALSE(resolved.ok()) << scheme;
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kDeadlineExceeded)
        << scheme << ": " << resolved.status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << scheme;
  }
}

TEST_F(FetcherProxyTest, SshRemoteThroughHttpProxyIsInvalidArgument) {
  GitFetchOptions o = Options("ssh://git@127.0.0.1:22/repo.git");
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << resolved.status();
  EXPECT_TRUE(absl::StrContains(resolved.status().message(), "socks5")) << resolved.status();
}

TEST_F(FetcherProxyTest, MalformedProxyAddressIsInvalidArgument) {
  GitFetchOptions o = Options(http_->Url("repo.git"));
  for (const char* address :
       {"127.0.0.1:3128", "ftp://127.0.0.1:21", "http://:3128", "http://127.0.0.1:99999"}) {
    o.proxy.address = address;
    auto fetched = Fetch(o, "bad-address");
    ASSERT_FALSE(fetched.ok()) << address;
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kInvalidArgument)
        << address << ": " << fetched.status();
    EXPECT_TRUE(absl::StrContains(fetched.status().message(), "proxy address")) << fetched.status();
  }
}

TEST_F(FetcherProxyTest, SshAndHttpRemotesThroughSocks5Proxy) {
  auto sshd = testing::GitSshServer::Start();
  ASSERT_TRUE(sshd.ok()) << sshd.status();
  auto socks = testing::SshSocksProxy::Start(**sshd);
  ASSERT_TRUE(socks.ok()) << socks.status();

  GitFetchOptions o;
  o.url = (*sshd)->Url(repo_->bare);
  o.ref.branch = "main";
  o.timeout = absl::Seconds(20);
  o.credentials.ssh_identity = (*sshd)->client_private_key();
  o.credentials.ssh_known_hosts = (*sshd)->known_hosts_line();
  o.proxy.address = (*socks)->Address();
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  auto fetched = Fetch(o, "socks-ssh");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->revision, "main@sha1:" + repo_->c4);
  EXPECT_EQ(*testing::ReadFile(Dir("co-socks-ssh/deploy/app.yaml")), "kind: C\n");
  // ssh -v logs each SOCKS request it forwards.
  std::string log = (*socks)->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("127.0.0.1:", (*sshd)->port())) ||
              absl::StrContains(log, absl::StrCat("127.0.0.1 port ", (*sshd)->port())))
      << log;

  GitFetchOptions h;
  h.url = http_->Url("repo.git");
  h.ref.branch = "main";
  h.timeout = absl::Seconds(20);
  h.proxy.address = (*socks)->Address();
  auto over_http = Fetch(h, "socks-http");
  ASSERT_TRUE(over_http.ok()) << over_http.status();
  EXPECT_EQ(*testing::ReadFile(Dir("co-socks-http/deploy/app.yaml")), "kind: C\n");

  // A remote the SOCKS server cannot reach, and a SOCKS server that is down.
  h.url = absl::StrCat("http://127.0.0.1:", testing::PickFreePort(), "/repo.git");
  auto refused = fetcher_->ResolveRemote(h);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_TRUE(absl::StrContains(
      refused.status().message(),
      absl::StrCat("socks5 proxy ", (*socks)->Address(), " could not connect to 127.0.0.1:")))
      << refused.status();
  o.proxy.address = absl::StrCat("socks5://127.0.0.1:", testing::PickFreePort());
  auto down = fetcher_->ResolveRemote(o);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  EXPECT_TRUE(absl::StrContains(down.status().message(), "proxy " + o.proxy.address))
      << down.status();
}

}  // namespace
}  // namespace gitops::source
