// HttpKubeClient against build/bin/test-apiserver (HTTPS + bearer token).
#include "common/kube/http_kube_client.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kube/config.h"
#include "common/metrics/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/apiserver/test_apiserver.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;
using ::gitops::testing::TestApiServer;
using ::testing::HasSubstr;

const GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};
const GroupVersionKind kGitRepo{"source.toolkit.fluxcd.io", "v1", "GitRepository"};

json ConfigMap(const std::string& ns, const std::string& name, json data = {{"a", "b"}}) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", data}};
}

class HttpKubeClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = TestApiServer::StartWithCrds();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    auto cfg = LoadKubeConfigFile(server_->kubeconfig_path());
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    config_ = *cfg;
    config_.qps = 0;  // no client-side limit unless a test sets one
    auto c = HttpKubeClient::Create(config_);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }
  // A fresh namespace per test keeps tests independent on the shared server.
  std::string Namespace(const std::string& name) {
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
    auto created = client_->Create(ns);
    EXPECT_TRUE(created.ok()) << created.status();
    return name;
  }

  static TestApiServer* server_;
  KubeConfig config_;
  std::unique_ptr<HttpKubeClient> client_;
};
TestApiServer* HttpKubeClientTest::server_ = nullptr;

TEST_F(HttpKubeClientTest, CreateGetAndStaleUpdateConflicts) {
  std::string ns = Namespace("crud");
  auto created = client_->Create(ConfigMap(ns, "one"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE((*created)["metadata"]["uid"].get<std::string>().empty());
  auto got = client_->Get(kConfigMap, ns, "one");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)["data"]["a"], "b");

  json v1 = *got;
  (*got)["data"]["a"] = "c";
  auto updated = client_->Update(*got);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_NE((*updated)["metadata"]["resourceVersion"], v1["metadata"]["resourceVersion"]);

  v1["data"]["a"] = "stale";
  auto stale = client_->Update(v1);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(IsConflict(stale.status())) << stale.status();
  EXPECT_EQ(KubeReason(stale.status()), "Conflict");
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("the object has been modified"));

  auto again = client_->Create(ConfigMap(ns, "one"));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
}

TEST_F(HttpKubeClientTest, NotFoundCarriesServerReasonAndMessage) {
  auto got = client_->Get(kConfigMap, "default", "missing");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsNotFound(got.status()));
  EXPECT_EQ(KubeReason(got.status()), "NotFound");
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("configmaps \"missing\" not found"));
  EXPECT_EQ(KubeStatusBody(got.status())["code"], 404);

  auto kind = client_->Get({"example.com", "v1", "Nothing"}, "default", "x");
  EXPECT_TRUE(absl::IsNotFound(kind.status()));
  EXPECT_THAT(std::string(kind.status().message()), HasSubstr("no matches for kind"));
}

TEST_F(HttpKubeClientTest, InvalidObjectIsInvalidArgumentWithCauses) {
  json repo = {{"apiVersion", "source.toolkit.fluxcd.io/v1"},
               {"kind", "GitRepository"},
               {"metadata", {{"name", "bad"}, {"namespace", "default"}}},
               {"spec", {{"interval", "1m"}}}};
  auto created = client_->Create(repo);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KubeReason(created.status()), "Invalid");
  EXPECT_THAT(std::string(created.status().message()), HasSubstr("spec.url: Required value"));
}

TEST_F(HttpKubeClientTest, ListFiltersByLabelAndPages) {
  std::string ns = Namespace("listing");
  for (int i = 0; i < 5; ++i) {
    json cm = ConfigMap(ns, absl::StrCat("cm-", i));
    cm["metadata"]["labels"] = {{"app", i % 2 == 0 ? "even" : "odd"}};
    ASSERT_TRUE(client_->Create(cm).ok());
  }
  auto evens = client_->List(kConfigMap, ns, {.label_selector = "app=even"});
  ASSERT_TRUE(evens.ok()) << evens.status();
  EXPECT_EQ((*evens)["items"].size(), 3u);
  auto in = client_->List(kConfigMap, ns, {.label_selector = "app in (odd),app!=even"});
  ASSERT_TRUE(in.ok());
  EXPECT_EQ((*in)["items"].size(), 2u);

  std::vector<std::string> names;
  ListOptions page{.limit = 2};
  int pages = 0;
  do {
    auto l = client_->List(kConfigMap, ns, page);
    ASSERT_TRUE(l.ok()) << l.status();
    for (const auto& item : (*l)["items"]) names.push_back(item["metadata"]["name"]);
    page.continue_token = (*l)["metadata"].value("continue", "");
    pages++;
  } while (!page.continue_token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), 5u);
}

TEST_F(HttpKubeClientTest, StatusSubresourcePatchKeepsGeneration) {
  std::string ns = Namespace("status");
  json repo = {{"apiVersion", "source.toolkit.fluxcd.io/v1"},
               {"kind", "GitRepository"},
               {"metadata", {{"name", "repo"}, {"namespace", ns}}},
               {"spec", {{"interval", "1m"}, {"url", "https://example.com/r.git"}}}};
  auto created = client_->Create(repo);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["metadata"]["generation"], 1);
  EXPECT_EQ((*created)["spec"]["timeout"], "60s") << "CRD default applied";
  auto mapping = client_->Mapping(kGitRepo);
  ASSERT_TRUE(mapping.ok());
  EXPECT_EQ(mapping->resource, "gitrepositories");
  EXPECT_TRUE(mapping->namespaced);
  EXPECT_TRUE(mapping->has_status);

  json status = {{"status", {{"observedGeneration", 1}, {"conditions", json::array()}}}};
  auto patched = client_->Patch(kGitRepo, ns, "repo", PatchType::kMerge, status, {}, true);
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["status"]["observedGeneration"], 1);
  EXPECT_EQ((*patched)["metadata"]["generation"], 1);
  auto spec =
      client_->Patch(kGitRepo, ns, "repo", PatchType::kMerge, {{"spec", {{"interval", "5m"}}}});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)["metadata"]["generation"], 2);
}

TEST_F(HttpKubeClientTest, ServerSideApplyConflictsUnlessForced) {
  std::string ns = Namespace("ssa");
  json cm = ConfigMap(ns, "owned", {{"key", "one"}});
  auto applied = client_->Apply(cm, {.field_manager = "kustomize-controller"});
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ((*applied)["metadata"]["managedFields"][0]["manager"], "kustomize-controller");

  json other = ConfigMap(ns, "owned", {{"key", "two"}});
  auto conflict = client_->Apply(other, {.field_manager = "someone-else"});
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(IsConflict(conflict.status()));
  EXPECT_THAT(std::string(conflict.status().message()),
              HasSubstr("conflict with \"kustomize-controller\": .data.key"));

  auto forced = client_->Apply(other, {.field_manager = "someone-else", .force = true});
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ((*forced)["data"]["key"], "two");

  // Fields a manager stops applying are removed.
  json fewer = ConfigMap(ns, "second", {{"x", "1"}, {"y", "2"}});
  ASSERT_TRUE(client_->Apply(fewer, {.field_manager = "m"}).ok());
  auto pruned = client_->Apply(ConfigMap(ns, "second", {{"x", "1"}}), {.field_manager = "m"});
  ASSERT_TRUE(pruned.ok());
  EXPECT_FALSE((*pruned)["data"].contains("y"));

  auto dry = client_->Apply(ConfigMap(ns, "dry-only"), {.field_manager = "m", .dry_run = true});
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_TRUE(absl::IsNotFound(client_->Get(kConfigMap, ns, "dry-only").status()));
}

TEST_F(HttpKubeClientTest, ServerSideApplyMergesContainersByName) {
  std::string ns = Namespace("ssa-deploy");
  auto deployment = [&](json containers) {
    return json{{"apiVersion", "apps/v1"},
                {"kind", "Deployment"},
                {"metadata", {{"name", "web"}, {"namespace", ns}}},
                {"spec",
                 {{"selector", {{"matchLabels", {{"app", "web"}}}}},
                  {"template",
                   {{"metadata", {{"labels", {{"app", "web"}}}}},
                    {"spec", {{"containers", containers}}}}}}}};
  };
  ASSERT_TRUE(client_
                  ->Apply(deployment({{{"name", "app"}, {"image", "app:1"}}}),
                          {.field_manager = "kustomize-controller"})
                  .ok());
  // Another manager adds a sidecar: merged by name, not replacing the list.
  auto sidecar = client_->Apply(deployment({{{"name", "proxy"}, {"image", "envoy:1"}}}),
                                {.field_manager = "injector"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const json& containers = (*sidecar)["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ((*sidecar)["status"]["readyReplicas"], 1) << "workload status simulated";
  // Changing the image the first manager owns conflicts; its own update works.
  auto conflict = client_->Apply(deployment({{{"name", "app"}, {"image", "app:evil"}}}),
                                 {.field_manager = "injector"});
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status();
  EXPECT_THAT(std::string(conflict.status().message()),
              HasSubstr(".spec.template.spec.containers[name=\"app\"].image"));
  auto upgrade = client_->Apply(deployment({{{"name", "app"}, {"image", "app:2"}}}),
                                {.field_manager = "kustomize-controller"});
  ASSERT_TRUE(upgrade.ok()) << upgrade.status();
  EXPECT_EQ((*upgrade)["spec"]["template"]["spec"]["containers"].size(), 2u);
  EXPECT_EQ((*upgrade)["metadata"]["generation"], 3);
}

TEST_F(HttpKubeClientTest, RetryOnConflictRereadsAndSucceeds) {
  std::string ns = Namespace("retry-conflict");
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "counter", {{"n", "0"}})).ok());
  auto stale = client_->Get(kConfigMap, ns, "counter");
  ASSERT_TRUE(stale.ok());
  ASSERT_TRUE(
      client_->Patch(kConfigMap, ns, "counter", PatchType::kMerge, {{"data", {{"n", "1"}}}}).ok());
  int attempts = 0;
  absl::Status st = RetryOnConflict([&]() -> absl::Status {
    json obj = *stale;
    if (attempts++ > 0) {
      auto fresh = client_->Get(kConfigMap, ns, "counter");
      if (!fresh.ok()) return fresh.status();
      obj = *fresh;
    }
    obj["data"]["n"] = "2";
    return client_->Update(obj).status();
  });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(attempts, 2);
}

TEST_F(HttpKubeClientTest, WatchDeliversBookmarks) {
  std::string ns = Namespace("bookmarks");
  auto list = client_->List(kConfigMap, ns, {});
  ASSERT_TRUE(list.ok());
  std::string rv = (*list)["metadata"]["resourceVersion"];
  std::string bookmark_rv;
  absl::Status st =
      client_->Watch(kConfigMap, ns, {.resource_version = rv}, [&](const WatchEvent& e) {
        if (e.type != WatchEvent::Type::kBookmark) return true;
        bookmark_rv = e.object["metadata"]["resourceVersion"];
        return false;
      });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_FALSE(bookmark_rv.empty());
}

TEST_F(HttpKubeClientTest, DeleteWaitsForFinalizers) {
  std::string ns = Namespace("deleting");
  json cm = ConfigMap(ns, "held");
  cm["metadata"]["finalizers"] = {"example.com/hold"};
  ASSERT_TRUE(client_->Create(cm).ok());
  ASSERT_TRUE(client_->Delete(kConfigMap, ns, "held").ok());
  auto still = client_->Get(kConfigMap, ns, "held");
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE((*still)["metadata"].contains("deletionTimestamp"));
  auto released = client_->Patch(kConfigMap, ns, "held", PatchType::kMerge,
                                 {{"metadata", {{"finalizers", nullptr}}}});
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(absl::IsNotFound(client_->Get(kConfigMap, ns, "held").status()));
  EXPECT_TRUE(absl::IsNotFound(client_->Delete(kConfigMap, ns, "held")));
}

TEST_F(HttpKubeClientTest, WatchResumesFromResourceVersionAndCancels) {
  std::string ns = Namespace("watching");
  auto list = client_->List(kConfigMap, ns, {});
  ASSERT_TRUE(list.ok());
  std::string rv = (*list)["metadata"]["resourceVersion"];
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "w1")).ok());
  ASSERT_TRUE(client_->Delete(kConfigMap, ns, "w1").ok());

  std::vector<std::string> seen;
  absl::Status st =
      client_->Watch(kConfigMap, ns, {.resource_version = rv}, [&](const WatchEvent& e) {
        if (e.type == WatchEvent::Type::kBookmark) return true;
        seen.push_back(absl::StrCat(static_cast<int>(e.type), ":",
                                    e.object["metadata"]["name"].get<std::string>()));
        return seen.size() < 2;
      });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_THAT(seen, ::testing::ElementsAre("0:w1", "2:w1"));

  std::atomic<bool> cancel{false};
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(300));
    cancel = true;
  });
  absl::Time start = absl::Now();
  st = client_->Watch(kConfigMap, ns, {.resource_version = rv, .cancel = &cancel},
                      [](const WatchEvent&) { return true; });
  stopper.join();
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled) << st;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HttpKubeClientTest, WatchFromCompactedVersionIsGone) {
  std::string ns = Namespace("gone");
  auto list = client_->List(kConfigMap, ns, {});
  ASSERT_TRUE(list.ok());
  std::string rv = (*list)["metadata"]["resourceVersion"];
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "g")).ok());
  ASSERT_TRUE(server_->Testing("faults", R"({"compact":true})").ok());
  absl::Status st = client_->Watch(kConfigMap, ns, {.resource_version = rv},
                                   [](const WatchEvent&) { return true; });
  EXPECT_TRUE(IsGone(st)) << st;
  EXPECT_EQ(KubeReason(st), "Expired");
}

TEST_F(HttpKubeClientTest, MappingFindsCrdInstalledLater) {
  GroupVersionKind widget{"example.com", "v1", "Widget"};
  EXPECT_TRUE(absl::IsNotFound(client_->Mapping(widget).status()));
  auto path = server_->WriteManifest("widget-crd.yaml", R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
)");
  ASSERT_TRUE(path.ok());
  ASSERT_TRUE(server_->Kubectl({"apply", "-f", *path}).ok());
  auto mapping = client_->Mapping(widget);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  EXPECT_EQ(mapping->resource, "widgets");
  EXPECT_FALSE(mapping->namespaced);
  json w = {{"apiVersion", "example.com/v1"},
            {"kind", "Widget"},
            {"metadata", {{"name", "w"}}},
            {"size", 3}};
  auto created = client_->Create(w);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["size"], 3);
}

TEST_F(HttpKubeClientTest, RetriesInjectedServerErrorsAndThrottling) {
  ASSERT_TRUE(client_->Mapping({"", "v1", "Namespace"}).ok());  // discovery out of the count
  ASSERT_TRUE(server_->Testing("faults", R"({"failNext":2,"failCode":500})").ok());
  int64_t before = client_->request_count();
  double errors_before =
      Metrics::Global().Value("rest_client_requests_total", {{"code", "500"}, {"method", "GET"}});
  auto got = client_->Get({"", "v1", "Namespace"}, "", "default");
  EXPECT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(client_->request_count() - before, 3);
  EXPECT_EQ(
      Metrics::Global().Value("rest_client_requests_total", {{"code", "500"}, {"method", "GET"}}) -
          errors_before,
      2);

  ASSERT_TRUE(server_->Testing("faults", R"({"failNext":1,"failCode":429})").ok());
  got = client_->Get({"", "v1", "Namespace"}, "", "default");
  EXPECT_TRUE(got.ok()) << got.status();

  // Give up after max_attempts with the server's error.
  HttpKubeClientOptions opts;
  opts.max_attempts = 2;
  opts.initial_backoff = absl::Milliseconds(10);
  auto impatient = HttpKubeClient::Create(config_, opts);
  ASSERT_TRUE(impatient.ok());
  ASSERT_TRUE(server_->Testing("faults", R"({"failNext":2,"failCode":503})").ok());
  got = (*impatient)->Get({"", "v1", "Namespace"}, "", "default");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
}

TEST_F(HttpKubeClientTest, QpsLimitSpacesRequests) {
  KubeConfig slow = config_;
  slow.qps = 20;
  slow.burst = 1;
  auto c = HttpKubeClient::Create(slow);
  ASSERT_TRUE(c.ok());
  absl::Time start = absl::Now();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE((*c)->Get({"", "v1", "Namespace"}, "", "default").ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(240));
}

TEST_F(HttpKubeClientTest, ImpersonationIsSentAndRulesApply) {
  std::string ns = Namespace("imp");
  ASSERT_TRUE(server_
                  ->Testing("rules", R"([{"user":"system:serviceaccount:imp:reader",
                     "verbs":["get","list"],"resources":["*"],"allow":true}])")
                  .ok());
  auto reader =
      client_->Impersonate("system:serviceaccount:imp:reader", {"system:serviceaccounts"});
  EXPECT_TRUE(reader->List(kConfigMap, ns, {}).ok());
  auto denied = reader->Create(ConfigMap(ns, "nope"));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.status().message()),
              HasSubstr("User \"system:serviceaccount:imp:reader\" cannot create resource "
                        "\"configmaps\""));
  // The admin identity is not subject to the rules.
  EXPECT_TRUE(client_->Create(ConfigMap(ns, "yes")).ok());
  ASSERT_TRUE(server_->Testing("rules", "[]").ok());
}

TEST_F(HttpKubeClientTest, WrongTokenIsUnauthenticated) {
  KubeConfig bad = config_;
  bad.bearer_token = "wrong";
  auto c = HttpKubeClient::Create(bad);
  ASSERT_TRUE(c.ok());
  auto got = (*c)->Get({"", "v1", "Namespace"}, "", "default");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated) << got.status();
}

TEST(HttpKubeClientCertTest, ClientCertificateAuthenticates) {
  auto server = TestApiServer::Start({.client_cert_auth = true});
  ASSERT_TRUE(server.ok()) << server.status();
  auto cfg = LoadKubeConfigFile((*server)->kubeconfig_path());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->bearer_token.empty());
  ASSERT_FALSE(cfg->client_cert_pem.empty());
  auto client = HttpKubeClient::Create(*cfg);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->Get({"", "v1", "Namespace"}, "", "default").ok());
  KubeConfig anonymous = *cfg;
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  auto no_cert = HttpKubeClient::Create(anonymous, {.max_attempts = 1});
  ASSERT_TRUE(no_cert.ok());
  EXPECT_FALSE((*no_cert)->Get({"", "v1", "Namespace"}, "", "default").ok());
  auto kubectl = (*server)->Kubectl({"get", "ns", "default", "-o", "name"});
  ASSERT_TRUE(kubectl.ok()) << kubectl.status();
  EXPECT_EQ(*kubectl, "namespace/default\n");
}

}  // namespace
}  // namespace gitops::common
