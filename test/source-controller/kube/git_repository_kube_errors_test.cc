// Bad input against the source-controller binary in Kubernetes mode: URLs
// the CRD rejects and URLs it lets through, refs that do not exist, missing
// or wrong credentials over HTTPS and SSH.
// Each case checks the Ready/failure conditions, the Warning Event, that no
// secret leaks, and that the good GitRepositories next to the bad ones in
// the same controller still become Ready.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "test/source-controller/kube/kube_fixture.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

constexpr char kUser[] = "flux";
constexpr char kPassword[] = "s3cr3t-pass-8d1f";
constexpr char kWrongPassword[] = "wr0ng-pass-77ae";

class GitRepositoryKubeErrorsTest : public SourceKubeTest {
 protected:
  void SetUp() override {
    SourceKubeTest::SetUp();
    if (HasFatalFailure()) return;
    CreateRepo();
    auto sha = repo_->Commit("first", {{"apps/cm.yaml", "kind: ConfigMap\n"}});
    ASSERT_TRUE(sha.ok()) << sha.status();
    first_ = *sha;
  }

  std::string first_;
};

TEST_F(GitRepositoryKubeErrorsTest, CrdRejectsUrlsWithoutHttpHttpsOrSshScheme) {
  for (const std::string url :
       {"ftp://localhost/repo.git", "git://127.0.0.1/repo.git", "file:///srv/repo.git",
        "git@localhost:org/repo.git", "localhost/repo.git", "HTTPS://localhost/repo.git"}) {
    SCOPED_TRACE(url);
    auto applied = TryApply(GitRepositoryYaml("bad-scheme", url, "  interval: 1m\n"));
    ASSERT_FALSE(applied.ok()) << *applied;
    const std::string message(applied.status().message());
    EXPECT_TRUE(absl::StrContains(message, "The GitRepository \"bad-scheme\" is invalid"))
        << message;
    EXPECT_TRUE(absl::StrContains(
        message, absl::StrCat("spec.url: Invalid value: \"", url,
                              "\": spec.url in body should match '^(http|https|ssh)://.*$'")))
        << message;
    EXPECT_FALSE(Kubectl({"get", "gitrepository", "bad-scheme", "-n", kNamespace}).ok());
  }
}

// URLs that pass the CRD's pattern but cannot be parsed: Stalled with
// URLInvalid (Flux: url.Parse fails), no retry until the spec changes.
TEST_F(GitRepositoryKubeErrorsTest, MalformedUrlsStallWithUrlInvalidAndOthersStillReconcile) {
  StartHttp();
  StartController();
  const std::string in_url_password = "pw-in-url-5c2e";
  struct Case {
    std::string name, url;
    std::vector<std::string> message_parts;
  };
  const std::vector<Case> cases = {
      {"space-in-host",
       "https://exa mple.com/repo.git",
       {"https://exa mple.com/repo.git", "whitespace"}},
      {"scp-path-as-port",
       "ssh://git@localhost:org/repo.git",
       {"ssh://localhost:org/repo.git", "bad port"}},
      {"open-ipv6", "http://[::1/repo.git", {"http://[::1/repo.git", "ipv6"}},
      {"password-in-url",
       absl::StrCat("https://flux:", in_url_password, "@localhost:port/repo.git"),
       {"https://localhost:port/repo.git", "bad port"}},
  };
  for (const Case& c : cases) Apply(c.name, c.url, "  interval: 1m\n");
  Apply("good", http_->Url("repo.git"), "  interval: 1m\n  ref:\n    branch: main\n");

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    json obj = ExpectFailure(c.name, {"FetchFailed", "URLInvalid", c.message_parts, true});
    EXPECT_FALSE(obj["status"].contains("artifact")) << obj.dump();
  }
  WaitForRevision("good", "main@sha1:" + first_);
  ExpectNoLeak({in_url_password});

  // Stalled means no retries (backoff would have retried 2-3 times in 2s):
  // the log shows one failed reconcile.
  absl::SleepFor(absl::Seconds(2));
  size_t failures = 0;
  for (absl::string_view line : absl::StrSplit(controller_->ReadLog(), '\n')) {
    if (absl::StrContains(line, "\"name\":\"open-ipv6\"") &&
        absl::StrContains(line, "\"level\":\"error\"")) {
      ++failures;
    }
  }
  EXPECT_EQ(failures, 1u) << controller_->ReadLog();

  // Fixing the URL (a spec change) reconciles at once and clears Stalled.
  auto patched = Kubectl(
      {"patch", "gitrepository", "open-ipv6", "-n", kNamespace, "--type", "merge", "-p",
       json({{"spec", {{"url", http_->Url("repo.git")}, {"ref", {{"branch", "main"}}}}}}).dump()});
  ASSERT_TRUE(patched.ok()) << patched.status();
  json fixed = WaitForRevision("open-ipv6", "main@sha1:" + first_, absl::Seconds(20));
  EXPECT_FALSE(HasCondition(fixed, "Stalled")) << fixed.dump();
  EXPECT_FALSE(HasCondition(fixed, "FetchFailed")) << fixed.dump();
}

TEST_F(GitRepositoryKubeErrorsTest, UnknownRefsFailWithGitOperationFailedAndRetry) {
  ASSERT_TRUE(repo_->work().AnnotatedTag("v1.0.0", "one").ok());
  auto second = repo_->Commit("second", {{"apps/cm.yaml", "kind: ConfigMap # 2\n"}});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(repo_->work().Tag("v1.1.0").ok());
  ASSERT_TRUE(repo_->Push().ok());
  StartHttp();
  StartController();
  const std::string url = http_->Url("repo.git");
  const std::string unknown_commit = "0123456789abcdef0123456789abcdef01234567";
  Apply("no-branch", url, "  interval: 1m\n  ref:\n    branch: nope\n");
  Apply("no-tag", url, "  interval: 1m\n  ref:\n    tag: v9.9.9\n");
  Apply("no-commit", url,
        absl::StrCat("  interval: 1m\n  ref:\n    commit: ", unknown_commit, "\n"));
  Apply("no-semver", url, "  interval: 1m\n  ref:\n    semver: \">=2.0.0\"\n");
  Apply("bad-range", url, "  interval: 1m\n  ref:\n    semver: \"not-a-range\"\n");
  Apply("semver", url, "  interval: 1m\n  ref:\n    semver: \"1.x\"\n");
  Apply("tag", url, "  interval: 1m\n  ref:\n    tag: v1.0.0\n");

  ExpectFailure("no-branch", {"FetchFailed", "GitOperationFailed", {"branch 'nope'", "not found"}});
  ExpectFailure("no-tag", {"FetchFailed", "GitOperationFailed", {"tag 'v9.9.9'", "not found"}});
  ExpectFailure("no-commit", {"FetchFailed", "GitOperationFailed", {unknown_commit, "not found"}});
  ExpectFailure("no-semver", {"FetchFailed", "GitOperationFailed", {">=2.0.0", "no tag matches"}});
  // Flux parses the range inside the clone: a generic error, retried.
  ExpectFailure("bad-range",
                {"FetchFailed", "GitOperationFailed", {"invalid semver range 'not-a-range'"}});
  // The neighbours resolve their refs (an annotated tag peels to its commit).
  WaitForRevision("semver", "v1.1.0@sha1:" + *second);
  WaitForRevision("tag", "v1.0.0@sha1:" + first_);

  // Not Stalled: the ref may appear upstream, and the retry picks it up.
  ASSERT_TRUE(repo_->work().Tag("v9.9.9").ok());
  ASSERT_TRUE(repo_->Push().ok());
  json recovered = WaitForRevision("no-tag", "v9.9.9@sha1:" + *second, absl::Seconds(30));
  EXPECT_FALSE(HasCondition(recovered, "FetchFailed")) << recovered.dump();
  WaitForEvent("no-tag", "Normal", "NewArtifact");
}

// HTTPS with basic auth and a private CA. As in Flux, whatever goes wrong
// talking to the server (a rejected password, an untrusted or unusable CA)
// is GitOperationFailed and retried; only a Secret that cannot be read is
// AuthenticationFailed.
TEST_F(GitRepositoryKubeErrorsTest, HttpsBasicAuthWithCaFromSecret) {
  GitHttpServer::Options options;
  options.tls = true;
  options.username = kUser;
  options.password = kPassword;
  auto https = GitHttpServer::Start(dir_ + "/srv", options);
  ASSERT_TRUE(https.ok()) << https.status();
  http_ = std::move(*https);
  const std::string ca = http_->ca_pem();
  CreateSecret("https-ok", {{"username", kUser}, {"password", kPassword}, {"ca.crt", ca}});
  CreateSecret("https-wrong", {{"username", kUser}, {"password", kWrongPassword}, {"ca.crt", ca}});
  CreateSecret("https-no-ca", {{"username", kUser}, {"password", kPassword}});
  CreateSecret("https-bad-ca",
               {{"username", kUser}, {"password", kPassword}, {"ca.crt", "not a certificate\n"}});
  StartController();
  const std::string url = http_->Url("repo.git");
  const std::string ref = "  interval: 1m\n  ref:\n    branch: main\n";
  for (const char* name : {"https-ok", "https-wrong", "https-no-ca", "https-bad-ca"}) {
    Apply(name, url, absl::StrCat(ref, "  secretRef:\n    name: ", name, "\n"));
  }
  Apply("https-missing", url, ref + "  secretRef:\n    name: missing\n");

  json ok = WaitForRevision("https-ok", "main@sha1:" + first_);
  EXPECT_EQ(Condition(ok, "ArtifactInStorage").value("status", ""), "True") << ok.dump();
  WaitForEvent("https-ok", "Normal", "NewArtifact");
  ExpectFailure("https-wrong", {"FetchFailed",
                                "GitOperationFailed",
                                {"failed to checkout and determine revision", url,
                                 "authentication failed", "user 'flux'"}});
  ExpectFailure("https-no-ca",
                {"FetchFailed", "GitOperationFailed", {url, "localhost", "not trusted"}});
  ExpectFailure("https-bad-ca",
                {"FetchFailed", "GitOperationFailed", {url, "ca.crt holds no pem certificate"}});
  ExpectFailure("https-missing",
                {"FetchFailed",
                 "AuthenticationFailed",
                 {"failed to get secret 'flux-system/missing': secrets \"missing\" not found"}});
  ExpectNoLeak({kPassword, kWrongPassword});

  // A fixed Secret is picked up by the next attempt (no spec change needed).
  auto patched =
      Kubectl({"patch", "secret", "https-wrong", "-n", kNamespace, "--type", "merge", "-p",
               json({{"data", {{"password", absl::Base64Escape(kPassword)}}}}).dump()});
  ASSERT_TRUE(patched.ok()) << patched.status();
  RequestReconcile("https-wrong", "fixed-secret");
  json fixed = WaitForRevision("https-wrong", "main@sha1:" + first_, absl::Seconds(30));
  EXPECT_EQ(Str(fixed, {"status", "lastHandledReconcileAt"}), "fixed-secret");
  EXPECT_FALSE(HasCondition(fixed, "FetchFailed")) << fixed.dump();
  EXPECT_FALSE(HasCondition(fixed, "Reconciling")) << fixed.dump();
}

// SSH with an ed25519 key and known_hosts. As in Flux, a host key that
// known_hosts does not vouch for and a key that is not a key fail the clone
// (GitOperationFailed, retried); a Secret without identity or known_hosts is
// refused before connecting (AuthenticationFailed).
TEST_F(GitRepositoryKubeErrorsTest, SshEd25519KeyAndKnownHosts) {
  auto sshd = GitSshServer::Start();
  ASSERT_TRUE(sshd.ok()) << sshd.status();
  auto other = GenerateSshKey(dir_, "other_host_key");
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string key = (*sshd)->client_private_key();
  const std::string host = absl::StrCat("[127.0.0.1]:", (*sshd)->port());
  const std::string known_hosts = (*sshd)->known_hosts_line();
  CreateSecret("ssh-ok", {{"identity", key}, {"known_hosts", known_hosts}});
  // known_hosts of another host, and the right host with another key.
  CreateSecret("ssh-other-host",
               {{"identity", key}, {"known_hosts", "git.example.com " + other->public_key}});
  CreateSecret("ssh-changed-key",
               {{"identity", key}, {"known_hosts", absl::StrCat(host, " ", other->public_key)}});
  CreateSecret("ssh-bad-identity", {{"identity",
                                     "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n"
                                     "-----END OPENSSH PRIVATE KEY-----\n"},
                                    {"known_hosts", known_hosts}});
  CreateSecret("ssh-no-known-hosts", {{"identity", key}});
  CreateSecret("ssh-no-identity", {{"known_hosts", known_hosts}});
  StartController();
  const std::string url = (*sshd)->Url(repo_->bare_path());
  // Messages show urls without userinfo (the ssh login included).
  const std::string shown = absl::StrCat("ssh://127.0.0.1:", (*sshd)->port(), repo_->bare_path());
  const std::string ref = "  interval: 1m\n  ref:\n    branch: main\n";
  for (const char* name : {"ssh-ok", "ssh-other-host", "ssh-changed-key", "ssh-bad-identity",
                           "ssh-no-known-hosts", "ssh-no-identity"}) {
    Apply(name, url, absl::StrCat(ref, "  secretRef:\n    name: ", name, "\n"));
  }

  json ok = WaitForRevision("ssh-ok", "main@sha1:" + first_);
  EXPECT_EQ(Str(ok, {"status", "artifact", "digest"}).rfind("sha256:", 0), 0u) << ok.dump();
  ExpectFailure("ssh-other-host",
                {"FetchFailed",
                 "GitOperationFailed",
                 {shown, "unknown ssh host key for " + host, "not in known_hosts"}});
  ExpectFailure(
      "ssh-changed-key",
      {"FetchFailed", "GitOperationFailed", {shown, "ssh host key mismatch for " + host}});
  ExpectFailure(
      "ssh-bad-identity",
      {"FetchFailed", "GitOperationFailed", {shown, "Failed to authenticate SSH session"}});
  // Flux validates an ssh Secret before connecting: AuthenticationFailed.
  ExpectFailure("ssh-no-known-hosts",
                {"FetchFailed",
                 "AuthenticationFailed",
                 {"failed to configure authentication options: invalid 'ssh' auth option: "
                  "'known_hosts' is required"}});
  ExpectFailure("ssh-no-identity",
                {"FetchFailed",
                 "AuthenticationFailed",
                 {"failed to configure authentication options: invalid 'ssh' auth option: "
                  "'identity' is required"}});
  // The private key's body never shows up.
  std::vector<std::string> key_lines;
  for (absl::string_view line : absl::StrSplit(key, '\n')) {
    if (line.size() > 40 && !absl::StartsWith(line, "-----")) key_lines.emplace_back(line);
  }
  ASSERT_FALSE(key_lines.empty());
  ExpectNoLeak(key_lines);
}

}  // namespace
}  // namespace gitops::testing
