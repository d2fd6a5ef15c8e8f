#include "common/controller/conditions.h"

#include "common/controller/reconcile_metrics.h"
#include "common/metrics/metrics.h"
#include "gtest/gtest.h"

namespace gitops::common {
namespace {

using json = nlohmann::json;

json Object(int generation) {
  return {{"apiVersion", "source.toolkit.fluxcd.io/v1"},
          {"kind", "GitRepository"},
          {"metadata", {{"name", "r"}, {"generation", generation}}}};
}

TEST(ConditionsTest, LastTransitionTimeChangesOnlyWhenStatusFlips) {
  json obj = Object(3);
  absl::Time t1 = absl::FromUnixSeconds(1000), t2 = absl::FromUnixSeconds(2000),
             t3 = absl::FromUnixSeconds(3000);
  SetCondition(obj, {"Ready", "False", "Progressing", "working"}, t1);
  SetCondition(obj, {"Ready", "False", "Failed", "other message"}, t2);
  const json* ready = FindCondition(obj, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ((*ready)["lastTransitionTime"], "1970-01-01T00:16:40Z");
  EXPECT_EQ((*ready)["reason"], "Failed");
  EXPECT_EQ((*ready)["observedGeneration"], 3);
  SetCondition(obj, {"Ready", "True", "Succeeded", "ok"}, t3);
  ready = FindCondition(obj, "Ready");
  EXPECT_EQ((*ready)["lastTransitionTime"], "1970-01-01T00:50:00Z");
  EXPECT_TRUE(IsConditionTrue(obj, "Ready"));
  EXPECT_EQ(obj["status"]["conditions"].size(), 1u);
}

TEST(ConditionsTest, ReadyIsKeptFirst) {
  json obj = Object(1);
  SetCondition(obj, {"ArtifactInStorage", "True", "Succeeded", ""}, absl::Now());
  SetCondition(obj, {"Reconciling", "True", "Progressing", ""}, absl::Now());
  SetCondition(obj, {"Ready", "Unknown", "Progressing", ""}, absl::Now());
  EXPECT_EQ(obj["status"]["conditions"][0]["type"], "Ready");
  EXPECT_EQ(obj["status"]["conditions"][1]["type"], "Reconciling");
  EXPECT_EQ(obj["status"]["conditions"][2]["type"], "ArtifactInStorage");
}

TEST(ConditionsTest, SummarizeMapsStatusCodesToReadyStalledReconciling) {
  struct Case {
    const char* name;
    absl::Status status;
    const char* ready;
    bool stalled;
    bool reconciling;
  } cases[] = {
      {"ok", absl::OkStatus(), "True", false, false},
      {"invalid spec stalls", absl::InvalidArgumentError("spec.url: bad"), "False", true, false},
      {"transient retries", absl::UnavailableError("connection refused"), "False", false, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json obj = Object(7);
    SetCondition(obj, {"Stalled", "True", "Old", ""}, absl::Now());
    SummarizeReady(obj, c.status, "Succeeded", "stored artifact", "GitOperationFailed",
                   absl::Now());
    EXPECT_EQ((*FindCondition(obj, "Ready"))["status"], c.ready);
    EXPECT_EQ(FindCondition(obj, "Stalled") != nullptr, c.stalled);
    EXPECT_EQ(FindCondition(obj, "Reconciling") != nullptr, c.reconciling);
    EXPECT_EQ(obj["status"]["observedGeneration"], 7);
    if (!c.status.ok()) {
      EXPECT_EQ((*FindCondition(obj, "Ready"))["reason"], "GitOperationFailed");
      EXPECT_EQ((*FindCondition(obj, "Ready"))["message"], std::string(c.status.message()));
    }
  }
}

TEST(ConditionsTest, MergePatchHoldsOnlyTheDifference) {
  json a = {{"x", 1}, {"y", {{"a", 1}, {"b", 2}}}, {"z", {1, 2}}};
  json b = {{"x", 1}, {"y", {{"a", 1}, {"c", 3}}}, {"z", {1, 2, 3}}};
  json patch = CreateMergePatch(a, b);
  EXPECT_EQ(patch, json({{"y", {{"b", nullptr}, {"c", 3}}}, {"z", {1, 2, 3}}}));
  EXPECT_EQ(a.patch(json::array()), a);
  EXPECT_TRUE(CreateMergePatch(a, a).empty());
}

TEST(ReconcileMetricsTest, ReadyConditionGaugeFollowsTheObject) {
  json obj = Object(1);
  obj["metadata"]["namespace"] = "flux-system";
  MetricLabels base = {
      {"kind", "GitRepository"}, {"name", "r"}, {"namespace", "flux-system"}, {"type", "Ready"}};
  auto value = [&](const char* status) {
    MetricLabels l = base;
    l.emplace_back("status", status);
    return Metrics::Global().Value("gotk_reconcile_condition", l);
  };
  RecordReadyCondition(obj);
  EXPECT_EQ(value("Unknown"), 1);
  SetCondition(obj, {"Ready", "True", "Succeeded", ""}, absl::Now());
  RecordReadyCondition(obj);
  EXPECT_EQ(value("True"), 1);
  EXPECT_EQ(value("Unknown"), 0);
  RecordDeleted(obj);
  EXPECT_EQ(value("Deleted"), 1);
  EXPECT_EQ(value("True"), 0);
  RecordReconcileDuration(obj, absl::Milliseconds(250));
  EXPECT_NE(Metrics::Global().Render().find(
                "gotk_reconcile_duration_seconds_count{kind=\"GitRepository\",name=\"r\","
                "namespace=\"flux-system\"} 1"),
            std::string::npos)
      << Metrics::Global().Render();
}

}  // namespace
}  // namespace gitops::common
