// Informer, Controller and object patch helpers against test-apiserver.
#include "common/controller/informer.h"

#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/controller/conditions.h"
#include "common/controller/controller.h"
#include "common/controller/object_patch.h"
#include "common/kube/config.h"
#include "common/kube/http_kube_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/apiserver/test_apiserver.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;
using ::gitops::testing::TestApiServer;

const GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};

json ConfigMap(const std::string& ns, const std::string& name, const std::string& value = "1") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"v", value}}}};
}

// Records handler calls; thread-safe.
class Recorder {
 public:
  InformerHandlers Handlers() {
    return {[this](const json& o) { Note("add", o); },
            [this](const json&, const json& n) { Note("update", n); },
            [this](const json& o) { Note("delete", o); }};
  }
  bool WaitFor(const std::string& event, absl::Duration timeout = absl::Seconds(10)) {
    absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (seen_.count(event)) return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

 private:
  void Note(const std::string& what, const json& o) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.insert(absl::StrCat(what, " ", ObjectKey(o), " ", o["data"].value("v", "")));
  }
  std::mutex mu_;
  std::set<std::string> seen_;
};

class InformerTest : public ::testing::Test {
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
    cfg->qps = 0;
    auto c = HttpKubeClient::Create(*cfg);
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }
  std::string Namespace(const std::string& name) {
    auto r = client_->Create(
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    EXPECT_TRUE(r.ok()) << r.status();
    return name;
  }
  static TestApiServer* server_;
  std::unique_ptr<HttpKubeClient> client_;
};
TestApiServer* InformerTest::server_ = nullptr;

TEST_F(InformerTest, ListsThenWatchesAddsUpdatesAndDeletes) {
  std::string ns = Namespace("inf-basic");
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "before")).ok());
  Recorder rec;
  Informer informer(*client_, {.gvk = kConfigMap, .namespace_ = ns}, rec.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(10)));
  EXPECT_TRUE(rec.WaitFor("add inf-basic/before 1"));
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "after")).ok());
  EXPECT_TRUE(rec.WaitFor("add inf-basic/after 1"));
  ASSERT_TRUE(
      client_->Patch(kConfigMap, ns, "after", PatchType::kMerge, {{"data", {{"v", "2"}}}}).ok());
  EXPECT_TRUE(rec.WaitFor("update inf-basic/after 2"));
  ASSERT_TRUE(client_->Delete(kConfigMap, ns, "before").ok());
  EXPECT_TRUE(rec.WaitFor("delete inf-basic/before 1"));
  auto cached = informer.Get("inf-basic/after");
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ((*cached)["data"]["v"], "2");
  EXPECT_FALSE(informer.Get("inf-basic/before").has_value());
  EXPECT_EQ(informer.list_count(), 1);
}

TEST_F(InformerTest, RelistsAfterGoneAndReportsWhatTheWatchMissed) {
  std::string ns = Namespace("inf-gone");
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "old")).ok());
  Recorder rec;
  Informer informer(*client_, {.gvk = kConfigMap, .namespace_ = ns}, rec.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(10)));
  // No watch can be open while these changes happen, and the history is
  // compacted, so the informer must relist to learn about them.
  ASSERT_TRUE(server_->Testing("faults", R"({"failWatches":true,"dropWatches":true})").ok());
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "new")).ok());
  ASSERT_TRUE(client_->Delete(kConfigMap, ns, "old").ok());
  ASSERT_TRUE(server_->Testing("faults", R"({"compact":true})").ok());
  ASSERT_TRUE(server_->Testing("faults", R"({"failWatches":false})").ok());
  EXPECT_TRUE(rec.WaitFor("add inf-gone/new 1"));
  EXPECT_TRUE(rec.WaitFor("delete inf-gone/old 1"));
  EXPECT_GE(informer.list_count(), 2);
  EXPECT_THAT(informer.Keys(), ::testing::ElementsAre("inf-gone/new"));
}

TEST_F(InformerTest, ControllerRetriesFailuresWithBackoffThenSucceeds) {
  std::string ns = Namespace("inf-ctrl");
  WorkQueue queue({.name = "test-ctrl",
                   .base_delay = absl::Milliseconds(20),
                   .max_delay = absl::Milliseconds(200)});
  Informer informer(*client_, {.gvk = kConfigMap, .namespace_ = ns},
                    {[&](const json& o) { queue.Add(ObjectKey(o)); },
                     [&](const json&, const json& n) { queue.Add(ObjectKey(n)); },
                     [&](const json& o) { queue.Add(ObjectKey(o)); }});
  std::mutex mu;
  std::map<std::string, int> attempts;
  Controller controller({.name = "test", .workers = 2}, queue, [&](const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    int n = ++attempts[key];
    if (n < 3) return ReconcileResult{absl::UnavailableError("not yet")};
    return ReconcileResult{absl::OkStatus()};
  });
  informer.Start();
  controller.Start();
  ASSERT_TRUE(client_->Create(ConfigMap(ns, "a")).ok());
  absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (attempts["inf-ctrl/a"] >= 3) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  controller.Stop();
  informer.Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(attempts["inf-ctrl/a"], 3);
  EXPECT_EQ(queue.NumRequeues("inf-ctrl/a"), 0) << "success forgets the failures";
}

TEST_F(InformerTest, FinalizersAndStatusPatchSendOnlyWhatChanged) {
  std::string ns = Namespace("inf-patch");
  json repo = {{"apiVersion", "source.toolkit.fluxcd.io/v1"},
               {"kind", "GitRepository"},
               {"metadata", {{"name", "r"}, {"namespace", ns}}},
               {"spec", {{"interval", "1m"}, {"url", "https://example.com/r.git"}}}};
  auto created = client_->Create(repo);
  ASSERT_TRUE(created.ok()) << created.status();
  json obj = *created;
  ASSERT_TRUE(AddFinalizer(*client_, obj, "finalizers.fluxcd.io").ok());
  EXPECT_TRUE(HasFinalizer(obj, "finalizers.fluxcd.io"));
  int64_t before_count = client_->request_count();
  ASSERT_TRUE(AddFinalizer(*client_, obj, "finalizers.fluxcd.io").ok());
  EXPECT_EQ(client_->request_count(), before_count) << "no request when already present";

  json before = obj;
  SummarizeReady(obj, absl::OkStatus(), "Succeeded", "stored artifact for revision 'main@sha1:abc'",
                 "GitOperationFailed", absl::Now());
  ASSERT_TRUE(PatchStatus(*client_, before, obj, "source-controller").ok());
  EXPECT_TRUE(IsConditionTrue(obj, "Ready"));
  auto table = server_->Kubectl({"get", "gitrepo", "r", "-n", ns});
  ASSERT_TRUE(table.ok());
  EXPECT_THAT(*table, ::testing::HasSubstr("stored artifact for revision"));
  before_count = client_->request_count();
  json same = obj;
  ASSERT_TRUE(PatchStatus(*client_, obj, same, "source-controller").ok());
  EXPECT_EQ(client_->request_count(), before_count);

  // A stale copy cannot drop a finalizer someone else just changed.
  json stale = obj;
  ASSERT_TRUE(RemoveFinalizer(*client_, obj, "finalizers.fluxcd.io").ok());
  EXPECT_FALSE(HasFinalizer(obj, "finalizers.fluxcd.io"));
  absl::Status conflict = AddFinalizer(*client_, stale, "other");
  EXPECT_TRUE(IsConflict(conflict)) << conflict;
}

// The API server restarts with empty state: the informer reconnects, gets
// 410 for its old resourceVersion, relists, and reports the difference.
TEST(InformerRestartTest, SurvivesApiServerRestart) {
  auto server = TestApiServer::Start({.plain_http = true});
  ASSERT_TRUE(server.ok()) << server.status();
  auto cfg = LoadKubeConfigFile((*server)->kubeconfig_path());
  ASSERT_TRUE(cfg.ok());
  cfg->qps = 0;
  auto client = HttpKubeClient::Create(*cfg);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Create(ConfigMap("default", "before")).ok());
  // Push the resourceVersion well past what the fresh server will have.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*client)
                    ->Patch(kConfigMap, "default", "before", PatchType::kMerge,
                            {{"data", {{"v", absl::StrCat(i)}}}})
                    .ok());
  }
  Recorder rec;
  Informer informer(
      **client,
      {.gvk = kConfigMap, .namespace_ = "default", .max_backoff = absl::Milliseconds(500)},
      rec.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE((*server)->Restart().ok());
  ASSERT_TRUE((*client)->Create(ConfigMap("default", "after")).ok());
  EXPECT_TRUE(rec.WaitFor("add default/after 1"));
  EXPECT_TRUE(rec.WaitFor("delete default/before 19"));
  EXPECT_THAT(informer.Keys(), ::testing::ElementsAre("default/after"));
  EXPECT_GE(informer.list_count(), 2);
  informer.Stop();
}

}  // namespace
}  // namespace gitops::common
