// Events and leader election against build/bin/test-apiserver.
#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/kube/config.h"
#include "common/kube/events.h"
#include "common/kube/http_kube_client.h"
#include "common/kube/leader_election.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/apiserver/test_apiserver.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;
using ::gitops::testing::Subprocess;
using ::gitops::testing::TestApiServer;

class KubeFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = TestApiServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    auto cfg = LoadKubeConfigFile(server_->kubeconfig_path());
    ASSERT_TRUE(cfg.ok());
    cfg->qps = 0;
    auto c = HttpKubeClient::Create(*cfg);
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }
  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<HttpKubeClient> client_;
};

using EventsTest = KubeFixture;

TEST_F(EventsTest, RepeatsAggregateIntoOneEventWithCount) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "subject"}, {"namespace", "default"}}}};
  auto created = client_->Create(cm);
  ASSERT_TRUE(created.ok());
  KubeEventRecorder recorder(*client_, {.component = "kustomize-controller", .host = "h"});
  for (int i = 0; i < 3; ++i) {
    recorder.Event(*created, kEventTypeWarning, "ReconciliationFailed", "kustomize build failed",
                   {{"kustomize.toolkit.fluxcd.io/revision", "main@sha1:abc"}});
  }
  recorder.Event(*created, kEventTypeNormal, "ReconciliationSucceeded", "applied");
  recorder.Flush();
  auto list = client_->List({"", "v1", "Event"}, "default", {});
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ((*list)["items"].size(), 2u);
  std::map<std::string, json> by_reason;
  for (const auto& e : (*list)["items"]) by_reason[e["reason"]] = e;
  const json& failed = by_reason["ReconciliationFailed"];
  EXPECT_EQ(failed["count"], 3);
  EXPECT_EQ(failed["type"], "Warning");
  EXPECT_EQ(failed["source"]["component"], "kustomize-controller");
  EXPECT_EQ(failed["involvedObject"]["kind"], "ConfigMap");
  EXPECT_EQ(failed["involvedObject"]["uid"], (*created)["metadata"]["uid"]);
  EXPECT_EQ(failed["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/revision"],
            "main@sha1:abc");
  EXPECT_EQ(by_reason["ReconciliationSucceeded"]["count"], 1);
  auto kubectl = server_->Kubectl({"get", "events"});
  ASSERT_TRUE(kubectl.ok());
  EXPECT_THAT(*kubectl, ::testing::HasSubstr("kustomize build failed"));
}

TEST_F(EventsTest, HotLoopIsThrottledPerObject) {
  json obj = {{"apiVersion", "v1"},
              {"kind", "ConfigMap"},
              {"metadata", {{"name", "noisy"}, {"namespace", "default"}, {"uid", "u-1"}}}};
  KubeEventRecorder recorder(*client_, {.component = "source-controller", .burst = 5});
  for (int i = 0; i < 20; ++i) {
    recorder.Event(obj, kEventTypeNormal, "Progressing", absl::StrCat("attempt ", i));
  }
  recorder.Flush();
  auto list = client_->List({"", "v1", "Event"}, "default", {});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)["items"].size(), 5u);
  EXPECT_EQ(recorder.dropped(), 15);
}

using LeaderElectionTest = KubeFixture;

TEST_F(LeaderElectionTest, OnlyOneOfTwoCandidatesLeads) {
  std::atomic<bool> stop{false};
  std::atomic<int> leaders{0};
  auto make = [&](const std::string& id) {
    LeaderElectionConfig c;
    c.lease_namespace = "default";
    c.lease_name = "in-process";
    c.identity = id;
    c.lease_duration = absl::Seconds(2);
    c.renew_deadline = absl::Milliseconds(1500);
    c.retry_period = absl::Milliseconds(200);
    return c;
  };
  LeaderElector a(*client_, make("a"), {[&] { leaders++; }, [&] { leaders--; }, nullptr});
  LeaderElector b(*client_, make("b"), {[&] { leaders++; }, [&] { leaders--; }, nullptr});
  std::thread ta([&] { EXPECT_TRUE(a.Run(stop).ok()); });
  std::thread tb([&] { EXPECT_TRUE(b.Run(stop).ok()); });
  absl::Time end = absl::Now() + absl::Seconds(2);
  int max_seen = 0;
  while (absl::Now() < end) {
    max_seen = std::max(max_seen, leaders.load());
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(max_seen, 1);
  EXPECT_NE(a.IsLeader(), b.IsLeader());
  stop = true;
  ta.join();
  tb.join();
  auto lease = client_->Get({"coordination.k8s.io", "v1", "Lease"}, "default", "in-process");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->at("spec").value("holderIdentity", "x"), "") << "released on stop";
}

TEST_F(LeaderElectionTest, WithoutElectionStartsAtOnceAndStopsOnShutdown) {
  std::atomic<bool> shutdown{false};
  std::atomic<int> started{0}, stopped{0};
  std::thread t([&] {
    EXPECT_TRUE(RunWithLeaderElection(
                    *client_, nullptr, [&] { started++; }, [&] { stopped++; }, shutdown)
                    .ok());
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(started.load(), 1);
  EXPECT_EQ(stopped.load(), 0);
  shutdown = true;
  t.join();
  EXPECT_EQ(stopped.load(), 1);
}

// Two processes: one leads; when it dies without releasing, the other takes
// over within the lease duration.
TEST_F(LeaderElectionTest, SecondProcessTakesOverWhenLeaderDies) {
  auto start = [&](const std::string& id) {
    return Subprocess::Start({gitops::testing::BinaryPath("leader-elect-helper"),
                              server_->kubeconfig_path(), id, "1500"});
  };
  auto p1 = start("one");
  ASSERT_TRUE(p1.ok()) << p1.status();
  ASSERT_TRUE((*p1)->WaitForLog("LEADER one", absl::Seconds(10)).ok()) << (*p1)->ReadLog();
  auto p2 = start("two");
  ASSERT_TRUE(p2.ok());
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT((*p2)->ReadLog(), ::testing::Not(::testing::HasSubstr("LEADER")));
  absl::Time killed = absl::Now();
  (*p1)->Signal(SIGKILL);
  ASSERT_TRUE((*p2)->WaitForLog("LEADER two", absl::Seconds(10)).ok()) << (*p2)->ReadLog();
  // Within a few lease durations (1.5 s each): the lease expired and was
  // taken, rather than never or only after the 10 s wait. A tighter bound
  // would measure the machine's load, not the election.
  EXPECT_LT(absl::Now() - killed, absl::Milliseconds(4 * 1500));
  auto lease = client_->Get({"coordination.k8s.io", "v1", "Lease"}, "default", "helper-lock");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->at("spec").value("holderIdentity", ""), "two");
  EXPECT_EQ(lease->at("spec").value("leaseTransitions", 0), 1);
  (*p2)->Signal(SIGTERM);
  EXPECT_TRUE((*p2)->WaitForLog("STOPPED two", absl::Seconds(5)).ok());
}

}  // namespace
}  // namespace gitops::common
