// The libgit2 fetcher over ssh (a private sshd): ed25519 identity, host key
// checked against known_hosts.
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

class FetcherSshTest : public FetcherTest {
 protected:
  static void SetUpTestSuite() {
    auto repo = TestRepo::Create("fetch-ssh");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = new TestRepo(*repo);
    auto server = testing::GitSshServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    auto other = testing::GenerateSshKey(repo_->root, "other_key");
    ASSERT_TRUE(other.ok()) << other.status();
    other_key_ = new testing::SshKeyPair(*other);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete other_key_;
    testing::RemoveTree(repo_->root);
    delete repo_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    FetcherTest::SetUp();
  }

  GitFetchOptions Options() {
    GitFetchOptions o;
    o.url = server_->Url(repo_->bare);
    o.ref.tag = "v1.1.0";
    o.credentials.ssh_identity = server_->client_private_key();
    o.credentials.ssh_known_hosts = server_->known_hosts_line() + "\n";
    o.timeout = absl::Seconds(20);
    return o;
  }

  static TestRepo* repo_;
  static testing::GitSshServer* server_;
  static testing::SshKeyPair* other_key_;
};

TestRepo* FetcherSshTest::repo_ = nullptr;
testing::GitSshServer* FetcherSshTest::server_ = nullptr;
testing::SshKeyPair* FetcherSshTest::other_key_ = nullptr;

TEST_F(FetcherSshTest, ResolvesAndFetchesWithEd25519Identity) {
  GitFetchOptions o = Options();
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->revision, "v1.1.0@sha1:" + repo_->c2);
  auto fetched = fetcher_->FetchAndCheckout(o, Dir("cache"), Dir("co"));
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->revision, "v1.1.0@sha1:" + repo_->c2);
  EXPECT_GT(fetched->received_objects, 0);
  EXPECT_EQ(*testing::ReadFile(Dir("co/deploy/app.yaml")), "kind: B\n");
}

TEST_F(FetcherSshTest, AcceptsEcdsaAndPassphraseProtectedKeys) {
  struct Case {
    std::string name, type, passphrase;
  };
  const std::vector<Case> cases = {
      {"ecdsa", "ecdsa", ""},
      {"ed25519 with passphrase", "ed25519", "key-pass-123"},
      {"ecdsa with passphrase", "ecdsa", "key-pass-456"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto key = testing::GenerateSshKey(scratch_, absl::StrCat("key", c.type, c.passphrase.size()),
                                       c.type, c.passphrase);
    ASSERT_TRUE(key.ok()) << key.status();
    ASSERT_TRUE(server_->AuthorizeKey(key->public_key).ok());
    GitFetchOptions o = Options();
    o.credentials.ssh_identity = key->private_key;
    o.credentials.ssh_identity_passphrase = c.passphrase;
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_TRUE(resolved.ok()) << resolved.status();
    EXPECT_EQ(resolved->commit, repo_->c2);
    if (!c.passphrase.empty()) {
      o.credentials.ssh_identity_passphrase = "wrong-passphrase";
      auto wrong = fetcher_->ResolveRemote(o);
      ASSERT_FALSE(wrong.ok());
      EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
      EXPECT_EQ(wrong.status().message().find("wrong-passphrase"), std::string::npos);
    }
  }
}

TEST_F(FetcherSshTest, HostKeyMustBeKnownAndMatch) {
  struct Case {
    std::string name;
    std::string known_hosts;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"no known_hosts", "", "unknown ssh host key"},
      {"other host only", "[127.0.0.1]:1 " + server_->host_public_key() + "\n",
       "unknown ssh host key"},
      {"wrong key",
       absl::StrCat("[127.0.0.1]:", server_->port(), " ", other_key_->public_key, "\n"),
       "host key mismatch"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    GitFetchOptions o = Options();
    o.credentials.ssh_known_hosts = c.known_hosts;
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_FALSE(resolved.ok());
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kPermissionDenied) << resolved.status();
    EXPECT_NE(resolved.status().message().find(c.message_part), std::string::npos)
        << resolved.status();
    auto fetched = fetcher_->FetchAndCheckout(o, Dir("cache-" + c.name), Dir("co-" + c.name));
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kPermissionDenied) << fetched.status();
  }
}

TEST_F(FetcherSshTest, WrongOrMissingIdentityIsUnauthenticated) {
  struct Case {
    std::string name;
    std::string identity;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"missing", "", "no identity"},
      {"not authorized", other_key_->private_key, "rejected"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    GitFetchOptions o = Options();
    o.credentials.ssh_identity = c.identity;
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_FALSE(resolved.ok());
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kUnauthenticated) << resolved.status();
    EXPECT_NE(resolved.status().message().find(c.message_part), std::string::npos)
        << resolved.status();
    EXPECT_EQ(resolved.status().message().find("PRIVATE KEY"), std::string::npos);
  }
}

}  // namespace
}  // namespace gitops::source
