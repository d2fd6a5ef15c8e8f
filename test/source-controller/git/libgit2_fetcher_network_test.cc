// Unreachable hosts and hanging servers: Unavailable and DeadlineExceeded.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "source-controller/git/git_url.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/git/test_repo.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

std::vector<std::string> UrlsFor(int port) {
  return {
      absl::StrCat("git://127.0.0.1:", port, "/repo.git"),
      absl::StrCat("http://127.0.0.1:", port, "/repo.git"),
      absl::StrCat("https://localhost:", port, "/repo.git"),
      absl::StrCat("ssh://git@127.0.0.1:", port, "/srv/repo.git"),
  };
}

class FetcherNetworkTest : public FetcherTest {
 protected:
  GitFetchOptions Options(const std::string& url, absl::Duration timeout) {
    GitFetchOptions o;
    o.url = url;
    o.ref.branch = "main";
    o.timeout = timeout;
    o.credentials.ssh_identity = "unused";
    return o;
  }
};

TEST_F(FetcherNetworkTest, ClosedPortIsUnavailable) {
  int port = testing::PickFreePort();  // nothing listens there
  int i = 0;
  for (const std::string& url : UrlsFor(port)) {
    SCOPED_TRACE(url);
    GitFetchOptions o = Options(url, absl::Seconds(10));
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_FALSE(resolved.ok());
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kUnavailable) << resolved.status();
    EXPECT_NE(resolved.status().message().find(RedactUrl(url)), std::string::npos)
        << resolved.status();
    EXPECT_NE(resolved.status().message().find("branch 'main'"), std::string::npos);
    auto fetched = fetcher_->FetchAndCheckout(o, absl::StrCat(scratch_, "/c", i),
                                              absl::StrCat(scratch_, "/o", i));
    ++i;
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable) << fetched.status();
  }
}

TEST_F(FetcherNetworkTest, SilentServerTimesOut) {
  auto listener = testing::SilentTcpListener::Create();
  ASSERT_TRUE(listener.ok()) << listener.status();
  int i = 0;
  for (const std::string& url : UrlsFor((*listener)->port())) {
    SCOPED_TRACE(url);
    GitFetchOptions o = Options(url, absl::Seconds(1));
    absl::Time start = absl::Now();
    auto resolved = fetcher_->ResolveRemote(o);
    absl::Duration took = absl::Now() - start;
    ASSERT_FALSE(resolved.ok());
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kDeadlineExceeded) << resolved.status();
    EXPECT_NE(resolved.status().message().find("timed out"), std::string::npos);
    EXPECT_GE(took, absl::Milliseconds(900));
    EXPECT_LT(took, absl::Seconds(5));

    start = absl::Now();
    auto fetched = fetcher_->FetchAndCheckout(o, absl::StrCat(scratch_, "/c", i),
                                              absl::StrCat(scratch_, "/o", i));
    ++i;
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDeadlineExceeded) << fetched.status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  }
}

TEST_F(FetcherNetworkTest, TimeoutDuringTransferOfALocalRepository) {
  // No socket involved: the progress callbacks enforce the deadline.
  std::string bare = scratch_ + "/big.git";
  ASSERT_TRUE(testing::InitBareRepo(bare).ok());
  auto work = testing::GitWorkRepo::Create(scratch_ + "/work");
  ASSERT_TRUE(work.ok());
  std::vector<std::pair<std::string, std::string>> files;
  for (int f = 0; f < 300; ++f)
    files.emplace_back(absl::StrCat("f", f), std::string(2000, 'a' + f % 26) + std::to_string(f));
  ASSERT_TRUE(work->Commit("big", files).ok());
  ASSERT_TRUE(work->PushAll(bare).ok());
  GitFetchOptions o = Options("file://" + bare, absl::ZeroDuration());
  auto fetched = fetcher_->FetchAndCheckout(o, scratch_ + "/cache", scratch_ + "/co");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDeadlineExceeded) << fetched.status();
  o.timeout = absl::Seconds(30);
  auto ok = fetcher_->FetchAndCheckout(o, scratch_ + "/cache", scratch_ + "/co");
  EXPECT_TRUE(ok.ok()) << ok.status();
}

}  // namespace
}  // namespace gitops::source
