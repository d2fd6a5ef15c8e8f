// The real kubectl (v1.32) against build/bin/test-apiserver: what kubectl
// reports here is what it reports against a real cluster for the same
// commands (differences are listed in the README).
#include <csignal>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/apiserver/test_apiserver.h"

namespace gitops::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSeed[] = R"(apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: gitops-config, namespace: flux-system}
spec:
  interval: 1m
  url: https://github.com/org/gitops-config.git
  ref: {branch: main}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps-prod, namespace: flux-system}
spec:
  interval: 10m
  sourceRef: {kind: GitRepository, name: gitops-config}
  path: ./apps/overlays/prod
  prune: true
  wait: true
  timeout: 5m
)";

class KubectlInteropTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = TestApiServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
    auto out = server_->Kubectl({"apply", "-f", TestApiServer::CrdDir()});
    ASSERT_TRUE(out.ok()) << out.status();
    auto wait = server_->Kubectl({"wait", "--for=condition=established", "--timeout=20s",
                                  "crd/gitrepositories.source.toolkit.fluxcd.io",
                                  "crd/kustomizations.kustomize.toolkit.fluxcd.io"});
    ASSERT_TRUE(wait.ok()) << wait.status();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // Creates namespace `ns` and applies the seed manifests into it.
  std::string ApplySeed(const std::string& ns, const std::vector<std::string>& extra = {}) {
    std::string seed = kSeed;
    for (size_t at; (at = seed.find("flux-system")) != std::string::npos;) {
      seed.replace(at, 11, ns);
    }
    std::string ns_yaml =
        absl::StrCat("apiVersion: v1\nkind: Namespace\nmetadata: {name: ", ns, "}\n---\n");
    auto path = server_->WriteManifest(ns + "-seed.yaml", ns_yaml + seed);
    EXPECT_TRUE(path.ok());
    std::vector<std::string> args = {"apply", "-f", *path};
    args.insert(args.end(), extra.begin(), extra.end());
    auto out = server_->Kubectl(args);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }

  static TestApiServer* server_;
};
TestApiServer* KubectlInteropTest::server_ = nullptr;

TEST_F(KubectlInteropTest, ApiResourcesListsFluxKindsWithShortNames) {
  auto out = server_->Kubectl({"api-resources"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("gitrepositories"));
  EXPECT_THAT(*out, HasSubstr("gitrepo"));
  EXPECT_THAT(*out, HasSubstr("source.toolkit.fluxcd.io/v1"));
  EXPECT_THAT(*out, HasSubstr("kustomize.toolkit.fluxcd.io/v1"));
  EXPECT_THAT(*out, HasSubstr("deployments"));
  auto versions = server_->Kubectl({"api-versions"});
  ASSERT_TRUE(versions.ok());
  EXPECT_THAT(*versions, HasSubstr("coordination.k8s.io/v1"));
}

TEST_F(KubectlInteropTest, ClientSideApplyOfSeedCreatesThenIsUnchanged) {
  std::string first = ApplySeed("seed-csa");
  EXPECT_THAT(first, HasSubstr("gitrepository.source.toolkit.fluxcd.io/gitops-config created"));
  EXPECT_THAT(first, HasSubstr("kustomization.kustomize.toolkit.fluxcd.io/apps-prod created"));
  std::string second = ApplySeed("seed-csa");
  EXPECT_THAT(second, HasSubstr("gitops-config unchanged"));
  EXPECT_THAT(second, HasSubstr("apps-prod unchanged"));

  auto table = server_->Kubectl({"get", "gitrepositories", "-n", "seed-csa"});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(*table, HasSubstr("NAME"));
  EXPECT_THAT(*table, HasSubstr("URL"));
  EXPECT_THAT(*table, HasSubstr("READY"));
  EXPECT_THAT(*table, HasSubstr("https://github.com/org/gitops-config.git"));
}

TEST_F(KubectlInteropTest, ServerSideApplyOfSeedRecordsFieldManager) {
  std::string out = ApplySeed("seed-ssa", {"--server-side"});
  EXPECT_THAT(out, HasSubstr("serverside-applied"));
  auto yaml = server_->Kubectl(
      {"get", "ks", "apps-prod", "-n", "seed-ssa", "-o", "yaml", "--show-managed-fields"});
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_THAT(*yaml, HasSubstr("path: ./apps/overlays/prod"));
  EXPECT_THAT(*yaml, HasSubstr("manager: kubectl"));
  EXPECT_THAT(*yaml, HasSubstr("operation: Apply"));
  EXPECT_THAT(*yaml, HasSubstr("f:prune: {}"));
  EXPECT_THAT(*yaml, HasSubstr("generation: 1"));
  // Applying the same again is a no-op: resourceVersion stays.
  auto rv1 = server_->Kubectl(
      {"get", "ks", "apps-prod", "-n", "seed-ssa", "-o", "jsonpath={.metadata.resourceVersion}"});
  ApplySeed("seed-ssa", {"--server-side"});
  auto rv2 = server_->Kubectl(
      {"get", "ks", "apps-prod", "-n", "seed-ssa", "-o", "jsonpath={.metadata.resourceVersion}"});
  ASSERT_TRUE(rv1.ok() && rv2.ok());
  EXPECT_EQ(*rv1, *rv2);
}

TEST_F(KubectlInteropTest, ServerSideApplyConflictNeedsForce) {
  ApplySeed("seed-conflict", {"--server-side"});
  auto path = server_->WriteManifest("conflict.yaml", R"(apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps-prod, namespace: seed-conflict}
spec:
  interval: 10m
  sourceRef: {kind: GitRepository, name: gitops-config}
  path: ./apps/overlays/staging
  prune: true
)");
  ASSERT_TRUE(path.ok());
  auto conflict =
      server_->Kubectl({"apply", "--server-side", "--field-manager=other", "-f", *path});
  ASSERT_FALSE(conflict.ok());
  EXPECT_THAT(std::string(conflict.status().message()),
              HasSubstr("conflict with \"kubectl\": .spec.path"));
  auto forced = server_->Kubectl(
      {"apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", *path});
  ASSERT_TRUE(forced.ok()) << forced.status();
  auto got = server_->Kubectl({"get", "ks", "apps-prod", "-n", "seed-conflict", "-o",
                               "jsonpath={.spec.path} {.metadata.generation}"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "./apps/overlays/staging 2");
}

TEST_F(KubectlInteropTest, GetWatchSeesAPatch) {
  ApplySeed("seed-watch");
  auto watch = server_->KubectlBackground({"get", "gitrepo", "gitops-config", "-n", "seed-watch",
                                           "-w", "--output-watch-events", "-o",
                                           "jsonpath={.type} {.object.spec.interval}{\"\\n\"}"});
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE((*watch)->WaitForLog("ADDED 1m", absl::Seconds(20)).ok()) << (*watch)->ReadLog();
  auto patch = server_->Kubectl({"patch", "gitrepo", "gitops-config", "-n", "seed-watch",
                                 "--type=merge", "-p", R"({"spec":{"interval":"5m"}})"});
  ASSERT_TRUE(patch.ok()) << patch.status();
  EXPECT_THAT(*patch, HasSubstr("patched"));
  EXPECT_TRUE((*watch)->WaitForLog("MODIFIED 5m", absl::Seconds(20)).ok()) << (*watch)->ReadLog();
  (*watch)->Signal(SIGTERM);
}

TEST_F(KubectlInteropTest, PatchBumpsGenerationAndDeleteRemoves) {
  ApplySeed("seed-patch");
  auto patch = server_->Kubectl({"patch", "ks", "apps-prod", "-n", "seed-patch", "--type=merge",
                                 "-p", R"({"spec":{"suspend":true}})"});
  ASSERT_TRUE(patch.ok()) << patch.status();
  auto gen = server_->Kubectl({"get", "ks", "apps-prod", "-n", "seed-patch", "-o",
                               "jsonpath={.metadata.generation} {.spec.suspend}"});
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ(*gen, "2 true");
  // Labels are metadata: generation stays.
  ASSERT_TRUE(server_->Kubectl({"label", "ks", "apps-prod", "-n", "seed-patch", "team=a"}).ok());
  gen = server_->Kubectl({"get", "ks", "-n", "seed-patch", "-l", "team=a", "-o",
                          "jsonpath={.items[0].metadata.generation}"});
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ(*gen, "2");

  auto del = server_->Kubectl({"delete", "ks", "apps-prod", "-n", "seed-patch"});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_THAT(*del, HasSubstr("deleted"));
  auto gone = server_->Kubectl({"get", "ks", "apps-prod", "-n", "seed-patch"});
  ASSERT_FALSE(gone.ok());
  EXPECT_THAT(std::string(gone.status().message()),
              HasSubstr("Error from server (NotFound): kustomizations.kustomize.toolkit.fluxcd.io "
                        "\"apps-prod\" not found"));
}

TEST_F(KubectlInteropTest, StatusSubresourceIsSeparateFromSpec) {
  ApplySeed("seed-status");
  auto st = server_->Kubectl(
      {"patch", "gitrepo", "gitops-config", "-n", "seed-status", "--subresource=status",
       "--type=merge", "-p",
       R"({"status":{"conditions":[{"type":"Ready","status":"True","reason":"Succeeded","message":"stored artifact","lastTransitionTime":"2026-01-01T00:00:00Z"}]}})"});
  ASSERT_TRUE(st.ok()) << st.status();
  auto table = server_->Kubectl({"get", "gitrepo", "-n", "seed-status"});
  ASSERT_TRUE(table.ok());
  EXPECT_THAT(*table, HasSubstr("True"));
  EXPECT_THAT(*table, HasSubstr("stored artifact"));
  auto gen = server_->Kubectl({"get", "gitrepo", "gitops-config", "-n", "seed-status", "-o",
                               "jsonpath={.metadata.generation}"});
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ(*gen, "1");
  // Status sent to the main resource is ignored.
  ASSERT_TRUE(server_
                  ->Kubectl({"patch", "gitrepo", "gitops-config", "-n", "seed-status",
                             "--type=merge", "-p", R"({"status":{"conditions":[]}})"})
                  .ok());
  table = server_->Kubectl({"get", "gitrepo", "-n", "seed-status"});
  ASSERT_TRUE(table.ok());
  EXPECT_THAT(*table, HasSubstr("stored artifact"));
}

TEST_F(KubectlInteropTest, InvalidSpecIsRejectedWithFieldErrors) {
  auto path = server_->WriteManifest("invalid.yaml", R"(apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: broken, namespace: default}
spec:
  interval: often
)");
  ASSERT_TRUE(path.ok());
  auto out = server_->Kubectl({"apply", "-f", *path});
  ASSERT_FALSE(out.ok());
  std::string msg(out.status().message());
  EXPECT_THAT(msg, HasSubstr("is invalid"));
  EXPECT_THAT(msg, HasSubstr("spec.url: Required value"));
  EXPECT_THAT(msg, HasSubstr("spec.interval"));
}

TEST_F(KubectlInteropTest, FinalizerDelaysDeletionUntilRemoved) {
  auto path = server_->WriteManifest("fin.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata: {name: held, namespace: default, finalizers: [example.com/hold]}
data: {a: b}
)");
  ASSERT_TRUE(path.ok());
  ASSERT_TRUE(server_->Kubectl({"apply", "-f", *path}).ok());
  ASSERT_TRUE(server_->Kubectl({"delete", "cm", "held", "--wait=false"}).ok());
  auto ts = server_->Kubectl({"get", "cm", "held", "-o", "jsonpath={.metadata.deletionTimestamp}"});
  ASSERT_TRUE(ts.ok()) << ts.status();
  EXPECT_FALSE(ts->empty());
  ASSERT_TRUE(server_
                  ->Kubectl({"patch", "cm", "held", "--type=merge", "-p",
                             R"({"metadata":{"finalizers":null}})"})
                  .ok());
  EXPECT_FALSE(server_->Kubectl({"get", "cm", "held"}).ok());
}

TEST_F(KubectlInteropTest, DryRunServerDoesNotPersist) {
  auto path = server_->WriteManifest("dry.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata: {name: dry, namespace: default}
data: {a: b}
)");
  ASSERT_TRUE(path.ok());
  auto out = server_->Kubectl({"apply", "--dry-run=server", "-f", *path});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("(server dry run)"));
  EXPECT_FALSE(server_->Kubectl({"get", "cm", "dry"}).ok());
}

TEST_F(KubectlInteropTest, ImmutableDeploymentSelectorIsRejected) {
  auto path = server_->WriteManifest("deploy.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "nginx:1"}]
)");
  ASSERT_TRUE(path.ok());
  ASSERT_TRUE(server_->Kubectl({"apply", "-f", *path}).ok());
  auto ready = server_->Kubectl({"rollout", "status", "deployment/web", "--timeout=10s"});
  EXPECT_TRUE(ready.ok()) << ready.status();
  auto out = server_->Kubectl({"patch", "deploy", "web", "--type=merge", "-p",
                               R"({"spec":{"selector":{"matchLabels":{"app":"other"}}}})"});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("field is immutable"));
}

TEST_F(KubectlInteropTest, WaitReturnsWhenReadyConditionTurnsTrue) {
  ApplySeed("seed-wait");
  auto wait = server_->KubectlBackground({"wait", "--for=condition=Ready", "--timeout=20s", "-n",
                                          "seed-wait", "kustomization/apps-prod"});
  ASSERT_TRUE(wait.ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE((*wait)->Running()) << "not Ready yet: " << (*wait)->ReadLog();
  auto st = server_->Kubectl(
      {"patch", "ks", "apps-prod", "-n", "seed-wait", "--subresource=status", "--type=merge", "-p",
       // kubectl wait also wants status.observedGeneration to catch up (the
       // CRD defaults it to -1, as in a real cluster).
       R"({"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"ReconciliationSucceeded","message":"Applied revision: main@sha1:0123","lastTransitionTime":"2026-01-01T00:00:00Z"}]}})"});
  ASSERT_TRUE(st.ok()) << st.status();
  auto code = (*wait)->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << (*wait)->ReadLog();
  EXPECT_THAT((*wait)->ReadLog(), HasSubstr("condition met"));
}

TEST_F(KubectlInteropTest, DeletingANamespaceDeletesItsObjects) {
  ApplySeed("seed-ns-delete");
  auto del = server_->Kubectl({"delete", "ns", "seed-ns-delete", "--timeout=20s"});
  ASSERT_TRUE(del.ok()) << del.status();
  auto left = server_->Kubectl({"get", "gitrepo,ks", "-A", "-o", "name"});
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_THAT(*left, Not(HasSubstr("seed-ns-delete")));
  EXPECT_FALSE(server_->Kubectl({"get", "ns", "seed-ns-delete"}).ok());
  auto in_gone = server_->Kubectl({"get", "ks", "-n", "seed-ns-delete"});
  ASSERT_TRUE(in_gone.ok());
  EXPECT_THAT(*in_gone, HasSubstr("No resources found"));
}

// `kubectl create namespace|secret|configmap|serviceaccount` send protobuf.
TEST_F(KubectlInteropTest, ImperativeCreateOfNamespaceSecretAndConfigMap) {
  ASSERT_TRUE(server_->Kubectl({"create", "namespace", "imperative"}).ok());
  auto secret =
      server_->Kubectl({"create", "secret", "generic", "https-credentials", "-n", "imperative",
                        "--from-literal=username=git", "--from-literal=password=s3cret"});
  ASSERT_TRUE(secret.ok()) << secret.status();
  auto pw = server_->Kubectl({"get", "secret", "https-credentials", "-n", "imperative", "-o",
                              "jsonpath={.data.password}"});
  ASSERT_TRUE(pw.ok());
  EXPECT_EQ(*pw, "czNjcmV0");  // base64("s3cret")
  ASSERT_TRUE(server_
                  ->Kubectl({"create", "configmap", "settings", "-n", "imperative",
                             "--from-literal=mode=fast"})
                  .ok());
  auto mode = server_->Kubectl(
      {"get", "cm", "settings", "-n", "imperative", "-o", "jsonpath={.data.mode}"});
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(*mode, "fast");
  auto deploy = server_->Kubectl({"create", "deployment", "web", "--image=nginx"});
  ASSERT_FALSE(deploy.ok());
  EXPECT_THAT(std::string(deploy.status().message()), HasSubstr("send JSON"));
}

TEST(KubectlAuthTest, WrongTokenIsUnauthorized) {
  auto server = TestApiServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->Kubectl({"get", "ns"}).ok());
  auto out = (*server)->Kubectl({"get", "ns", "--token=wrong"});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("Unauthorized"));
}

}  // namespace
}  // namespace gitops::testing
