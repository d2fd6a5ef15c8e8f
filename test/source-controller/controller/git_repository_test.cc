// The GitRepository object model: manifest parsing with Flux's defaults and
// validation, status JSON round trip, condition bookkeeping.
#include "source-controller/controller/git_repository.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace gitops::source {
namespace {

using Json = nlohmann::json;

Json Minimal() {
  return Json::parse(R"({
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "GitRepository",
    "metadata": {"name": "podinfo"},
    "spec": {"url": "https://github.com/stefanprodan/podinfo", "interval": "5m"}
  })");
}

TEST(ParseGitRepositoryTest, MinimalManifestGetsFluxDefaults) {
  auto repo = ParseGitRepository(Minimal());
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_EQ(repo->name, "podinfo");
  EXPECT_EQ(repo->namespace_name, "default");
  EXPECT_EQ(repo->generation, 1);
  EXPECT_EQ(repo->spec.url, "https://github.com/stefanprodan/podinfo");
  EXPECT_EQ(repo->spec.interval, absl::Minutes(5));
  EXPECT_EQ(repo->spec.timeout, absl::Seconds(60));
  EXPECT_EQ(repo->spec.ref.branch, "master");
  EXPECT_EQ(repo->spec.ref.tag, "");
  EXPECT_EQ(repo->spec.ref.semver, "");
  EXPECT_EQ(repo->spec.ref.name, "");
  EXPECT_EQ(repo->spec.ref.commit, "");
  EXPECT_EQ(repo->spec.secret_name, "");
  EXPECT_FALSE(repo->spec.ignore.has_value());
  EXPECT_FALSE(repo->spec.suspend);
  EXPECT_FALSE(repo->status.artifact.has_value());
  EXPECT_TRUE(repo->status.conditions.empty());
}

TEST(ParseGitRepositoryTest, FullManifestKeepsEveryField) {
  Json m = Json::parse(R"({
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "GitRepository",
    "metadata": {"name": "app", "namespace": "flux-system", "generation": 7},
    "spec": {
      "url": "ssh://git@example.com/org/app.git",
      "interval": "1m30s",
      "timeout": "90s",
      "ref": {"tag": "v1.2.3", "commit": "0123456789abcdef0123456789abcdef01234567"},
      "secretRef": {"name": "git-auth"},
      "ignore": "/*\n!/deploy\n",
      "suspend": true,
      "recurseSubmodules": false,
      "include": null
    }
  })");
  auto repo = ParseGitRepository(m);
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_EQ(repo->namespace_name, "flux-system");
  EXPECT_EQ(repo->generation, 7);
  EXPECT_EQ(repo->spec.interval, absl::Seconds(90));
  EXPECT_EQ(repo->spec.timeout, absl::Seconds(90));
  EXPECT_EQ(repo->spec.ref.tag, "v1.2.3");
  EXPECT_EQ(repo->spec.ref.commit, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(repo->spec.ref.branch, "") << "an explicit ref must not get the default branch";
  EXPECT_EQ(repo->spec.secret_name, "git-auth");
  ASSERT_TRUE(repo->spec.ignore.has_value());
  EXPECT_EQ(*repo->spec.ignore, "/*\n!/deploy\n");
  EXPECT_TRUE(repo->spec.suspend);
}

TEST(ParseGitRepositoryTest, AcceptsV1beta2) {
  Json m = Minimal();
  m["apiVersion"] = "source.toolkit.fluxcd.io/v1beta2";
  EXPECT_TRUE(ParseGitRepository(m).ok());
}

TEST(ParseGitRepositoryTest, EmptyIgnoreIsSetNotDefaulted) {
  // An empty spec.ignore replaces Flux's default rules; it must not read as unset.
  Json m = Minimal();
  m["spec"]["ignore"] = "";
  auto repo = ParseGitRepository(m);
  ASSERT_TRUE(repo.ok()) << repo.status();
  ASSERT_TRUE(repo->spec.ignore.has_value());
  EXPECT_EQ(*repo->spec.ignore, "");
}

// Flux's NewAuthOptions: a bearerToken key makes the username and password
// keys unused for http(s); password stays the ssh key's passphrase.
TEST(CredentialsFromSecretDataTest, BearerTokenKeyIgnoresUsernameAndPassword) {
  GitCredentials basic = CredentialsFromSecretData({{"username", "u"}, {"password", "p"}});
  EXPECT_EQ(basic.username, "u");
  EXPECT_EQ(basic.password, "p");
  EXPECT_EQ(basic.bearer_token, "");
  GitCredentials bearer = CredentialsFromSecretData(
      {{"username", "u"}, {"password", "p"}, {"bearerToken", "t"}, {"identity", "k"}});
  EXPECT_EQ(bearer.username, "");
  EXPECT_EQ(bearer.password, "");
  EXPECT_EQ(bearer.bearer_token, "t");
  EXPECT_EQ(bearer.ssh_identity_passphrase, "p");
}

TEST(ParseGitRepositoryTest, InvalidManifestsNameTheFieldAtFault) {
  struct Case {
    std::string name;
    std::function<void(Json&)> mutate;
    std::string want_message;  // substring of the InvalidArgument message
  };
  const std::vector<Case> cases = {
      {"not an object", [](Json& m) { m = Json::array(); }, "manifest is not an object"},
      {"wrong apiVersion", [](Json& m) { m["apiVersion"] = "source.toolkit.fluxcd.io/v2"; },
       "apiVersion: unsupported \"source.toolkit.fluxcd.io/v2\""},
      {"missing apiVersion", [](Json& m) { m.erase("apiVersion"); }, "apiVersion"},
      {"wrong kind", [](Json& m) { m["kind"] = "Kustomization"; }, "kind: want GitRepository"},
      {"missing name", [](Json& m) { m["metadata"].erase("name"); }, "metadata.name: required"},
      {"name not a string", [](Json& m) { m["metadata"]["name"] = 12; },
       "metadata.name: must be a string"},
      {"missing spec", [](Json& m) { m.erase("spec"); }, "spec: required"},
      {"spec not an object", [](Json& m) { m["spec"] = "x"; }, "spec: required"},
      {"missing url", [](Json& m) { m["spec"].erase("url"); }, "spec.url: required"},
      {"empty url", [](Json& m) { m["spec"]["url"] = ""; }, "spec.url: required"},
      {"url not a string", [](Json& m) { m["spec"]["url"] = 5; }, "spec.url: must be a string"},
      {"missing interval", [](Json& m) { m["spec"].erase("interval"); }, "spec.interval: required"},
      {"bad interval", [](Json& m) { m["spec"]["interval"] = "5 minutes"; }, "spec.interval: "},
      {"interval without unit", [](Json& m) { m["spec"]["interval"] = "10"; }, "spec.interval: "},
      {"zero interval", [](Json& m) { m["spec"]["interval"] = "0s"; },
       "spec.interval: must be positive"},
      {"negative interval", [](Json& m) { m["spec"]["interval"] = "-1m"; }, "spec.interval"},
      {"bad timeout", [](Json& m) { m["spec"]["timeout"] = "soon"; }, "spec.timeout: "},
      {"zero timeout", [](Json& m) { m["spec"]["timeout"] = "0s"; },
       "spec.timeout: must be positive"},
      {"ref not an object", [](Json& m) { m["spec"]["ref"] = "main"; },
       "spec.ref: must be an object"},
      {"ref.branch not a string",
       [](Json& m) {
         m["spec"]["ref"] = {{"branch", 1}};
       },
       "spec.ref.branch: must be a string"},
      {"ref.semver not a string",
       [](Json& m) {
         m["spec"]["ref"] = {{"semver", true}};
       },
       "spec.ref.semver: must be a string"},
      {"secretRef without name", [](Json& m) { m["spec"]["secretRef"] = Json::object(); },
       "spec.secretRef.name: required"},
      {"ignore not a string", [](Json& m) { m["spec"]["ignore"] = Json::array({"a"}); },
       "spec.ignore: must be a string"},
      {"suspend not a boolean", [](Json& m) { m["spec"]["suspend"] = "true"; },
       "spec.suspend: must be a boolean"},
      {"include without repository",
       [](Json& m) {
         m["spec"]["include"] = Json::array({{{"toPath", "x"}}});
       },
       "spec.include[0].repository: required"},
      {"include not a list", [](Json& m) { m["spec"]["include"] = "lib"; },
       "spec.include: must be a list"},
      {"verify without secretRef",
       [](Json& m) {
         m["spec"]["verify"] = {{"mode", "HEAD"}};
       },
       "spec.verify.secretRef: required"},
      {"verify with an unknown mode",
       [](Json& m) {
         m["spec"]["verify"] = {{"mode", "commit"}, {"secretRef", {{"name", "k"}}}};
       },
       "spec.verify.mode: unsupported value \"commit\""},
      {"recurseSubmodules not a boolean", [](Json& m) { m["spec"]["recurseSubmodules"] = "yes"; },
       "spec.recurseSubmodules: must be a boolean"},
      {"sparseCheckout not a list", [](Json& m) { m["spec"]["sparseCheckout"] = "deploy/"; },
       "spec.sparseCheckout: must be a list of directories"},
      {"proxySecretRef without name", [](Json& m) { m["spec"]["proxySecretRef"] = Json::object(); },
       "spec.proxySecretRef.name: required"},
      {"cloud provider", [](Json& m) { m["spec"]["provider"] = "github"; },
       "spec.provider: \"github\" is not supported by this controller (only generic)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json m = Minimal();
    c.mutate(m);
    auto repo = ParseGitRepository(m);
    ASSERT_FALSE(repo.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(repo.status())) << repo.status();
    EXPECT_TRUE(absl::StrContains(repo.status().message(), c.want_message))
        << "got: " << repo.status().message() << "\nwant substring: " << c.want_message;
  }
}

TEST(ParseGitRepositoryTest, ReadsIncludeVerifySubmodulesSparseCheckoutAndProxy) {
  Json m = Minimal();
  m["spec"]["include"] = Json::array(
      {{{"repository", {{"name", "lib"}}}, {"fromPath", "deploy"}, {"toPath", "vendor/lib"}},
       {{"repository", {{"name", "other"}}}}});
  m["spec"]["verify"] = {{"mode", "head"}, {"secretRef", {{"name", "pgp"}}}};
  m["spec"]["recurseSubmodules"] = true;
  m["spec"]["sparseCheckout"] = Json::array({"./deploy", "apps/"});
  m["spec"]["proxySecretRef"] = {{"name", "proxy"}};
  m["spec"]["provider"] = "generic";
  auto repo = ParseGitRepository(m);
  ASSERT_TRUE(repo.ok()) << repo.status();
  ASSERT_EQ(repo->spec.include.size(), 2u);
  EXPECT_EQ(repo->spec.include[0].repository, "lib");
  EXPECT_EQ(repo->spec.include[0].from_path, "deploy");
  EXPECT_EQ(repo->spec.include[0].ToPath(), "vendor/lib");
  EXPECT_EQ(repo->spec.include[1].ToPath(), "other") << "Flux's default: the repository name";
  ASSERT_TRUE(repo->spec.verify.has_value());
  EXPECT_EQ(repo->spec.verify->mode, "head") << "kept as written, like Flux";
  EXPECT_EQ(repo->spec.verify->secret_name, "pgp");
  EXPECT_TRUE(repo->spec.recurse_submodules);
  EXPECT_EQ(*repo->spec.sparse_checkout, (std::vector<std::string>{"./deploy", "apps/"}));
  EXPECT_EQ(repo->spec.proxy_secret_name, "proxy");
}

// The status stanza round-trips with Flux's field names.
TEST(StatusJsonTest, RoundTripsEveryObservedField) {
  GitRepositoryStatus s;
  ArtifactStatus a;
  a.path = "gitrepository/ns/lib/abc.tar.gz";
  a.revision = "main@sha1:0123";
  a.digest = "sha256:abc";
  a.size = 10;
  a.last_update_time = absl::FromUnixSeconds(1700000000);
  a.metadata = {{"k", "v"}};
  s.artifact = a;
  s.included_artifacts = {a};
  s.observed_recurse_submodules = true;
  s.observed_include = {GitRepositoryInclude{"lib", "deploy", ""}};
  s.observed_sparse_checkout = std::vector<std::string>{"deploy"};
  s.source_verification_mode = "HEAD";
  s.last_handled_reconcile_at = "now";
  Json j = StatusToJson(s);
  EXPECT_EQ(j["artifact"]["metadata"]["k"], "v");
  EXPECT_EQ(j["includedArtifacts"][0]["digest"], "sha256:abc");
  EXPECT_EQ(j["observedRecurseSubmodules"], true);
  EXPECT_EQ(j["observedInclude"],
            Json::parse(R"([{"repository":{"name":"lib"},"fromPath":"deploy"}])"));
  EXPECT_EQ(j["observedSparseCheckout"], Json::array({"deploy"}));
  EXPECT_EQ(j["sourceVerificationMode"], "HEAD");
  EXPECT_EQ(j["lastHandledReconcileAt"], "now");
  EXPECT_EQ(StatusToJson(StatusFromJson(j)), j);
}

// Plain YAML scalars resolve to numbers and booleans (`kind: true`); reading
// them must reject the manifest, not throw out of the parser.
TEST(ParseGitRepositoryTest, NonStringApiVersionOrKindIsRejectedNotThrown) {
  Json m = Minimal();
  m["apiVersion"] = 1;
  auto repo = ParseGitRepository(m);
  ASSERT_FALSE(repo.ok());
  EXPECT_TRUE(absl::StrContains(repo.status().message(), "apiVersion")) << repo.status();

  m = Minimal();
  m["kind"] = true;
  repo = ParseGitRepository(m);
  ASSERT_FALSE(repo.ok());
  EXPECT_TRUE(absl::StrContains(repo.status().message(), "kind")) << repo.status();
}

Condition MakeCondition(const std::string& type, const std::string& status,
                        const std::string& reason, const std::string& message) {
  Condition c;
  c.type = type;
  c.status = status;
  c.reason = reason;
  c.message = message;
  c.observed_generation = 1;
  return c;
}

TEST(ConditionsTest, SetConditionKeepsTransitionTimeWhenStatusDoesNotFlip) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  const absl::Time t1 = t0 + absl::Minutes(1);
  const absl::Time t2 = t0 + absl::Minutes(2);
  std::vector<Condition> conds;
  SetCondition(conds, MakeCondition("Ready", "True", "Succeeded", "first"), t0);
  ASSERT_EQ(conds.size(), 1u);
  EXPECT_EQ(conds[0].last_transition_time, t0);

  // Same status, new reason and message: replaced, but the time stays.
  SetCondition(conds, MakeCondition("Ready", "True", "Succeeded", "second"), t1);
  ASSERT_EQ(conds.size(), 1u);
  EXPECT_EQ(conds[0].message, "second");
  EXPECT_EQ(conds[0].last_transition_time, t0);

  // A flip moves it.
  SetCondition(conds, MakeCondition("Ready", "False", "GitOperationFailed", "third"), t2);
  ASSERT_EQ(conds.size(), 1u);
  EXPECT_EQ(conds[0].status, "False");
  EXPECT_EQ(conds[0].reason, "GitOperationFailed");
  EXPECT_EQ(conds[0].last_transition_time, t2);
}

TEST(ConditionsTest, SetFindRemoveByType) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  std::vector<Condition> conds;
  SetCondition(conds, MakeCondition("Ready", "False", "X", "a"), t0);
  SetCondition(conds, MakeCondition("FetchFailed", "True", "X", "b"), t0);
  ASSERT_EQ(conds.size(), 2u);
  ASSERT_NE(FindCondition(conds, "FetchFailed"), nullptr);
  EXPECT_EQ(FindCondition(conds, "FetchFailed")->message, "b");
  EXPECT_EQ(FindCondition(conds, "Stalled"), nullptr);
  RemoveCondition(conds, "FetchFailed");
  EXPECT_EQ(FindCondition(conds, "FetchFailed"), nullptr);
  ASSERT_EQ(conds.size(), 1u);
  RemoveCondition(conds, "FetchFailed");  // absent: no-op
  EXPECT_EQ(conds.size(), 1u);
}

TEST(StatusJsonTest, RoundTripKeepsEveryField) {
  GitRepositoryStatus s;
  ArtifactStatus a;
  a.path = "gitrepository/flux-system/app/abc.tar.gz";
  a.url = "grpc://sc:9090/gitrepository/flux-system/app/abc.tar.gz";
  a.revision = "main@sha1:0123456789abcdef0123456789abcdef01234567";
  a.digest = "sha256:" + std::string(64, 'a');
  a.size = 12345;
  a.last_update_time = absl::FromUnixSeconds(1700000100);
  s.artifact = a;
  Condition ready = MakeCondition("Ready", "True", "Succeeded", "stored artifact");
  ready.observed_generation = 3;
  ready.last_transition_time = absl::FromUnixSeconds(1700000050);
  s.conditions.push_back(ready);
  Condition stored = MakeCondition("ArtifactInStorage", "True", "Succeeded", "stored");
  stored.last_transition_time = absl::FromUnixSeconds(1700000060);
  s.conditions.push_back(stored);
  s.observed_generation = 3;
  s.observed_ignore = "/*\n";

  Json j = StatusToJson(s);
  // Flux's field names.
  EXPECT_EQ(j["artifact"]["lastUpdateTime"], "2023-11-14T22:15:00Z");
  EXPECT_EQ(j["conditions"][0]["lastTransitionTime"], "2023-11-14T22:14:10Z");
  EXPECT_EQ(j["observedGeneration"], 3);
  EXPECT_EQ(j["observedIgnore"], "/*\n");

  // Through text, as it is persisted.
  GitRepositoryStatus back = StatusFromJson(Json::parse(j.dump()));
  ASSERT_TRUE(back.artifact.has_value());
  EXPECT_EQ(back.artifact->path, a.path);
  EXPECT_EQ(back.artifact->url, a.url);
  EXPECT_EQ(back.artifact->revision, a.revision);
  EXPECT_EQ(back.artifact->digest, a.digest);
  EXPECT_EQ(back.artifact->size, a.size);
  EXPECT_EQ(back.artifact->last_update_time, a.last_update_time);
  ASSERT_EQ(back.conditions.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(s.conditions[i].type);
    EXPECT_EQ(back.conditions[i].type, s.conditions[i].type);
    EXPECT_EQ(back.conditions[i].status, s.conditions[i].status);
    EXPECT_EQ(back.conditions[i].reason, s.conditions[i].reason);
    EXPECT_EQ(back.conditions[i].message, s.conditions[i].message);
    EXPECT_EQ(back.conditions[i].observed_generation, s.conditions[i].observed_generation);
    EXPECT_EQ(back.conditions[i].last_transition_time, s.conditions[i].last_transition_time);
  }
  EXPECT_EQ(back.observed_generation, 3);
  ASSERT_TRUE(back.observed_ignore.has_value());
  EXPECT_EQ(*back.observed_ignore, "/*\n");
}

TEST(StatusJsonTest, EmptyStatusRoundTripsWithoutArtifactOrIgnore) {
  GitRepositoryStatus back = StatusFromJson(Json::parse(StatusToJson({}).dump()));
  EXPECT_FALSE(back.artifact.has_value());
  EXPECT_FALSE(back.observed_ignore.has_value());
  EXPECT_TRUE(back.conditions.empty());
  // Garbage in, empty status out.
  EXPECT_FALSE(StatusFromJson(Json::array()).artifact.has_value());
}

TEST(FormatKubeTimeTest, Rfc3339UtcSeconds) {
  EXPECT_EQ(FormatKubeTime(absl::FromUnixSeconds(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatKubeTime(absl::FromUnixMillis(1700000000999)), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace gitops::source
