// The source-controller binary in Kubernetes mode with the GitRepository
// features that involve other objects: spec.include (another GitRepository's
// artifact copied in, rebuilt when it changes), spec.verify (OpenPGP commit
// signatures checked with real gpg keys from a Secret), and Flux's events and
// status bookkeeping around them. Real kubectl, test-apiserver, nginx
// git-http-backend and gpg.
#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "test/source-controller/kube/kube_fixture.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::testing {
namespace {

class GitRepositoryFeaturesTest : public SourceKubeTest {
 protected:
  void SetUp() override {
    SourceKubeTest::SetUp();
    if (HasFatalFailure()) return;
    StartHttp();
    // Included sources are looked at again after 1s instead of 30s.
    StartController({"--requeue-dependency=1s"});
  }
  void TearDown() override {
    if (!gnupg_home_.empty()) {
      RunCommand({"gpgconf", "--homedir", gnupg_home_, "--kill", "all"}).IgnoreError();
      unsetenv("GNUPGHOME");
    }
    SourceKubeTest::TearDown();
  }

  std::unique_ptr<TestRepo> NewRepo(const std::string& name) {
    auto repo = TestRepo::Create(dir_ + "/srv", name + ".git");
    EXPECT_TRUE(repo.ok()) << repo.status();
    return repo.ok() ? std::move(*repo) : nullptr;
  }
  std::string Url(const std::string& name) const { return http_->Url(name + ".git"); }

  // Files of `name`'s artifact as fetched over gRPC, by path.
  std::string FetchedFile(const std::string& name, const std::string& path) {
    const std::string out = absl::StrCat(dir_, "/fetched-", name, "-", ++fetches_);
    auto fetched = Fetch(name, out);
    EXPECT_TRUE(fetched.ok()) << fetched.status();
    auto content = ReadFile(out + "/" + path);
    return content.ok() ? *content : "<missing " + path + ">";
  }

  std::string gnupg_home_;
  int fetches_ = 0;
};

TEST_F(GitRepositoryFeaturesTest, IncludeWaitsForItsSourceThenFollowsIt) {
  auto app = NewRepo("app");
  auto lib = NewRepo("lib");
  ASSERT_TRUE(app && lib);
  ASSERT_TRUE(app->Commit("app", {{"apps/cm.yaml", "kind: ConfigMap\n"}}).ok());
  auto lib1 = lib->Commit("lib v1", {{"deploy/lib.yaml", "v: 1\n"}, {"README.md", "lib\n"}});
  ASSERT_TRUE(lib1.ok());

  // The included GitRepository does not exist yet: Flux's IncludeUnavailable.
  Apply("app", Url("app"),
        "  interval: 10m\n  ref:\n    branch: main\n  include:\n"
        "  - repository:\n      name: lib\n    fromPath: deploy\n    toPath: vendor/lib\n");
  json waiting = WaitFor("app", [](const json& o) {
    return Condition(o, "IncludeUnavailable").value("status", "") == "True";
  });
  EXPECT_EQ(Condition(waiting, "IncludeUnavailable").value("reason", ""), "NotFound");
  EXPECT_EQ(Condition(waiting, "Ready").value("status", ""), "False");
  EXPECT_EQ(ReadyMessage(waiting),
            "could not get resource for include 'lib': "
            "gitrepositories.source.toolkit.fluxcd.io \"lib\" not found");
  EXPECT_TRUE(Revision(waiting).empty());
  EXPECT_EQ(Condition(waiting, "Reconciling").value("reason", ""), "ProgressingWithRetry");
  // Waiting is no failure: no Warning event (Flux records a trace).
  for (const json& e : EventsFor("app")) EXPECT_NE(e.value("type", ""), "Warning") << e.dump();

  // Once it exists and has an artifact, the including one is built with it.
  Apply("lib", Url("lib"), "  interval: 10m\n  ref:\n    branch: main\n");
  json lib_obj = WaitForRevision("lib", "main@sha1:" + *lib1);
  json app_obj = WaitFor("app", [](const json& o) { return !Revision(o).empty(); });
  EXPECT_EQ(Condition(app_obj, "Ready").value("status", ""), "True") << app_obj.dump();
  EXPECT_FALSE(HasCondition(app_obj, "IncludeUnavailable"));
  EXPECT_EQ(Str(app_obj["status"]["includedArtifacts"][0], {"digest"}),
            Str(lib_obj, {"status", "artifact", "digest"}));
  EXPECT_EQ(
      app_obj["status"]["observedInclude"],
      json::parse(R"([{"repository":{"name":"lib"},"fromPath":"deploy","toPath":"vendor/lib"}])"));
  EXPECT_EQ(FetchedFile("app", "vendor/lib/lib.yaml"), "v: 1\n");
  EXPECT_EQ(FetchedFile("app", "apps/cm.yaml"), "kind: ConfigMap\n");
  const std::string app_digest = Str(app_obj, {"status", "artifact", "digest"});

  // A new commit in lib: lib gets a new artifact and app is rebuilt at once
  // (its own interval is 10m), same app revision, new digest.
  auto lib2 = lib->Commit("lib v2", {{"deploy/lib.yaml", "v: 2\n"}});
  ASSERT_TRUE(lib2.ok());
  RequestReconcile("lib", "lib-2");
  WaitForRevision("lib", "main@sha1:" + *lib2);
  app_obj = WaitFor("app", [&](const json& o) {
    return Str(o, {"status", "artifact", "digest"}) != app_digest &&
           Condition(o, "Ready").value("status", "") == "True";
  });
  EXPECT_EQ(FetchedFile("app", "vendor/lib/lib.yaml"), "v: 2\n");
  EXPECT_EQ(Str(app_obj["status"]["includedArtifacts"][0], {"revision"}), "main@sha1:" + *lib2);
  json event = WaitForEvent("app", "Normal", "NewArtifact");
  EXPECT_TRUE(absl::StartsWith(event.value("message", ""), "stored artifact for commit '"))
      << event.dump();
}

// A GPG key made for the test, its armored public key and 16-hex key ID.
struct TestKey {
  std::string armored;
  std::string key_id;
};

absl::StatusOr<TestKey> MakeKey(const std::string& home) {
  if (auto s =
          RunCommand({"gpg", "--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key",
                      "Flux Test <flux@example.com>", "ed25519", "sign", "never"});
      !s.ok()) {
    return s.status();
  }
  auto listing = RunCommand({"gpg", "--homedir", home, "--with-colons", "--list-keys"});
  if (!listing.ok()) return listing.status();
  TestKey key;
  for (absl::string_view line : absl::StrSplit(*listing, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() > 4 && f[0] == "pub") key.key_id = f[4];
  }
  auto armored = RunCommand({"gpg", "--homedir", home, "--armor", "--export"});
  if (!armored.ok()) return armored.status();
  key.armored = *armored;
  return key;
}

TEST_F(GitRepositoryFeaturesTest, VerifiedCommitsAreStoredAndUnsignedOnesAreRefused) {
  gnupg_home_ = MakeTempDir("gnupg");
  auto key = MakeKey(gnupg_home_);
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_EQ(key->key_id.size(), 16u);
  setenv("GNUPGHOME", gnupg_home_.c_str(), 1);  // for git commit -S

  auto app = NewRepo("signed");
  ASSERT_TRUE(app);
  // A commit signed with git's own gpg signing (-S overrides the test
  // helper's commit.gpgsign=false).
  ASSERT_TRUE(WriteFile(app->work().dir() + "/apps/cm.yaml", "v: signed\n").ok());
  ASSERT_TRUE(app->Git({"add", "-A"}).ok());
  auto committed = app->Git({"commit", "--quiet", "-S" + key->key_id, "-m", "signed"});
  ASSERT_TRUE(committed.ok()) << committed.status();
  ASSERT_TRUE(app->Push().ok());
  auto signed_sha = app->Git({"rev-parse", "HEAD"});
  ASSERT_TRUE(signed_sha.ok());
  CreateSecret("pgp-keys", {{"author.asc", key->armored}});

  Apply("signed", Url("signed"),
        "  interval: 10m\n  ref:\n    branch: main\n  verify:\n    mode: HEAD\n"
        "    secretRef:\n      name: pgp-keys\n");
  json obj = WaitForRevision("signed", "main@sha1:" + *signed_sha);
  json verified = Condition(obj, "SourceVerified");
  EXPECT_EQ(verified.value("status", ""), "True") << obj.dump();
  EXPECT_EQ(verified.value("reason", ""), "Succeeded");
  EXPECT_EQ(verified.value("message", ""),
            absl::StrCat("verified signature of\n\t- commit '", *signed_sha, "' with key '",
                         key->key_id, "'"));
  EXPECT_EQ(Str(obj, {"status", "sourceVerificationMode"}), "HEAD");

  // An unsigned commit on top is never stored: the signed artifact stays.
  auto unsigned_sha = app->Commit("unsigned", {{"apps/cm.yaml", "v: unsigned\n"}});
  ASSERT_TRUE(unsigned_sha.ok());
  RequestReconcile("signed", "after-unsigned");
  obj = WaitFor("signed", [](const json& o) {
    return Condition(o, "Ready").value("reason", "") == "InvalidCommitSignature";
  });
  // A failed verification is SourceVerified=False (a positive condition),
  // and Ready carries its reason and message, as in Flux.
  verified = Condition(obj, "SourceVerified");
  EXPECT_EQ(verified.value("status", ""), "False") << obj.dump();
  EXPECT_EQ(verified.value("message", ""), ReadyMessage(obj));
  EXPECT_TRUE(absl::StrContains(
      ReadyMessage(obj),
      absl::StrCat("signature verification of commit '", *unsigned_sha, "' failed")))
      << ReadyMessage(obj);
  EXPECT_EQ(Condition(obj, "Ready").value("status", ""), "False");
  EXPECT_EQ(Revision(obj), "main@sha1:" + *signed_sha);
  EXPECT_EQ(FetchedFile("signed", "apps/cm.yaml"), "v: signed\n");
  WaitForEvent("signed", "Warning", "InvalidCommitSignature");
  EXPECT_EQ(Str(obj, {"status", "lastHandledReconcileAt"}), "after-unsigned");
}

// --artifact-max-size (ours): a commit whose files add up to more than the
// limit is refused with a message naming the flag; a smaller one is stored.
TEST_F(GitRepositoryFeaturesTest, ArtifactSizeLimitFromTheFlag) {
  StopController();
  StartController({"--artifact-max-size=4Ki"});
  auto repo = NewRepo("big");
  ASSERT_TRUE(repo);
  ASSERT_TRUE(repo->Commit("big", {{"data.bin", std::string(16 << 10, 'x')}}).ok());
  Apply("big", Url("big"), "  interval: 10m\n  ref:\n    branch: main\n");
  json obj = ExpectFailure("big", {"StorageOperationFailed",
                                   "ArchiveOperationFailed",
                                   {"more than 4096 bytes", "--artifact-max-size"}});
  EXPECT_TRUE(Revision(obj).empty());
  auto small = repo->Commit("small", {{"data.bin", "small\n"}});
  ASSERT_TRUE(small.ok());
  RequestReconcile("big", "after-shrink");
  obj = WaitForRevision("big", "main@sha1:" + *small);
  EXPECT_FALSE(HasCondition(obj, "StorageOperationFailed")) << obj.dump();
}

// proxySecretRef: the fetch goes through a real proxy (tinyproxy with basic
// auth); a Secret without `address` is AuthenticationFailed with Flux's text.
TEST_F(GitRepositoryFeaturesTest, ProxySecretRefSendsTheFetchThroughTheProxy) {
  constexpr char kProxyPassword[] = "pr0xy-s3cret";
  auto proxy = TinyProxy::Start({"proxy-user", kProxyPassword});
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  auto repo = NewRepo("proxied");
  ASSERT_TRUE(repo);
  auto sha = repo->Commit("proxied", {{"apps/cm.yaml", "v: 1\n"}});
  ASSERT_TRUE(sha.ok());
  CreateSecret(
      "proxy",
      {{"address", (*proxy)->Address()}, {"username", "proxy-user"}, {"password", kProxyPassword}});
  CreateSecret("proxy-no-address", {{"username", "proxy-user"}});
  Apply("proxied", Url("proxied"),
        "  interval: 10m\n  ref:\n    branch: main\n  proxySecretRef:\n    name: proxy\n");
  Apply("no-address", Url("proxied"),
        "  interval: 10m\n  ref:\n    branch: main\n"
        "  proxySecretRef:\n    name: proxy-no-address\n");
  WaitForRevision("proxied", "main@sha1:" + *sha);
  EXPECT_TRUE(absl::StrContains((*proxy)->ReadLog(), "/proxied.git/info/refs"))
      << (*proxy)->ReadLog();
  ExpectFailure("no-address", {"FetchFailed",
                               "AuthenticationFailed",
                               {"failed to configure proxy options: invalid proxy secret "
                                "'flux-system/proxy-no-address': key 'address' is missing"}});
  ExpectNoLeak({kProxyPassword});
}

}  // namespace
}  // namespace gitops::testing
