// Pure functions of the test API server: patches, field sets, selectors, JSONPath.
#include "gtest/gtest.h"
#include "test/apiserver/merge.h"
#include "test/apiserver/selector.h"
#include "test/apiserver/table.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;

ListShape Shape(const std::vector<std::string>& path) {
  if (!path.empty() && (path.back() == "containers" || path.back() == "env")) {
    return {ListType::kMap, {"name"}};
  }
  if (!path.empty() && path.back() == "finalizers") return {ListType::kSet, {}};
  return {};
}

TEST(MergePatchTest, FollowsRfc7386) {
  struct Case {
    const char* name;
    json target, patch, want;
  } cases[] = {
      {"replace", {{"a", "b"}}, {{"a", "c"}}, {{"a", "c"}}},
      {"add", {{"a", "b"}}, {{"b", "c"}}, {{"a", "b"}, {"b", "c"}}},
      {"delete", {{"a", "b"}}, {{"a", nullptr}}, json::object()},
      {"nested",
       {{"a", {{"b", "c"}}}},
       {{"a", {{"b", "d"}, {"c", nullptr}}}},
       {{"a", {{"b", "d"}}}}},
      {"array replaces", {{"a", {1, 2}}}, {{"a", {3}}}, {{"a", {3}}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(MergePatch(c.target, c.patch), c.want);
  }
}

TEST(StrategicMergePatchTest, MergesListsByKeyAndHonoursDirectives) {
  json live = {{"spec",
                {{"containers",
                  {{{"name", "app"}, {"image", "a:1"}}, {{"name", "side"}, {"image", "s:1"}}}}}},
               {"metadata", {{"finalizers", {"x"}}}}};
  json patch = {{"spec",
                 {{"containers",
                   {{{"name", "app"}, {"image", "a:2"}}, {{"name", "side"}, {"$patch", "delete"}}}},
                  {"$setElementOrder/containers", {{{"name", "app"}}}}}},
                {"metadata", {{"finalizers", {"y"}}}}};
  json got = StrategicMergePatch(live, patch, Shape);
  ASSERT_EQ(got["spec"]["containers"].size(), 1u);
  EXPECT_EQ(got["spec"]["containers"][0]["image"], "a:2");
  EXPECT_FALSE(got["spec"].contains("$setElementOrder/containers"));
  EXPECT_EQ(got["metadata"]["finalizers"], json({"x", "y"}));
  json del = StrategicMergePatch(
      got, {{"metadata", {{"$deleteFromPrimitiveList/finalizers", {"x"}}}}}, Shape);
  EXPECT_EQ(del["metadata"]["finalizers"], json({"y"}));
}

TEST(FieldSetTest, RoundTripsThroughFieldsV1AndPrintsPaths) {
  json obj = {{"metadata", {{"labels", {{"app", "web"}}}}},
              {"spec", {{"containers", {{{"name", "app"}, {"image", "a:1"}}}}}}};
  FieldSet set = FieldsOf(obj, Shape);
  json v1 = FieldSetToV1(set);
  EXPECT_TRUE(v1["f:metadata"]["f:labels"].contains("f:app"));
  const json& item = v1["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
  EXPECT_TRUE(item.contains("."));
  EXPECT_TRUE(item.contains("f:image"));
  EXPECT_EQ(FieldSetFromV1(v1), set);
  FieldPath image = {"f:spec", "f:containers", "k:{\"name\":\"app\"}", "f:image"};
  ASSERT_TRUE(set.count(image));
  EXPECT_EQ(FieldPathString(image), ".spec.containers[name=\"app\"].image");
  ASSERT_NE(ValueAt(obj, image), nullptr);
  EXPECT_EQ(*ValueAt(obj, image), "a:1");
  RemoveAt(obj, {"f:spec", "f:containers", "k:{\"name\":\"app\"}"});
  EXPECT_TRUE(obj["spec"]["containers"].empty());
}

TEST(ApplyMergeTest, MergesMapsAndKeyedListsReplacesAtomicLists) {
  json live = {{"spec", {{"containers", {{{"name", "a"}, {"image", "1"}}}}, {"args", {"x"}}}}};
  json applied = {{"spec", {{"containers", {{{"name", "b"}, {"image", "2"}}}}, {"args", {"y"}}}}};
  json got = ApplyMerge(live, applied, Shape);
  EXPECT_EQ(got["spec"]["containers"].size(), 2u);
  EXPECT_EQ(got["spec"]["args"], json({"y"}));
}

TEST(SelectorTest, LabelSelectorSyntax) {
  json obj = {{"metadata", {{"labels", {{"app", "web"}, {"tier", "front"}}}}}};
  struct Case {
    const char* selector;
    bool match;
  } cases[] = {
      {"", true},
      {"app=web", true},
      {"app==web", true},
      {"app!=web", false},
      {"app in (web,api)", true},
      {"app notin (web)", false},
      {"tier", true},
      {"!tier", false},
      {"!missing", true},
      {"app=web,tier=back", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.selector);
    auto sel = Selector::ParseLabels(c.selector);
    ASSERT_TRUE(sel.ok()) << sel.status();
    EXPECT_EQ(sel->Matches(obj), c.match);
  }
  EXPECT_FALSE(Selector::ParseLabels("app in web").ok());
}

TEST(SelectorTest, FieldSelectorOnDottedPaths) {
  json ev = {{"metadata", {{"name", "e1"}, {"namespace", "ns"}}}, {"type", "Warning"}};
  auto sel = Selector::ParseFields("metadata.namespace=ns,type!=Normal");
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->Matches(ev));
  EXPECT_FALSE(Selector::ParseFields("garbage").ok());
}

TEST(JsonPathTest, PrinterColumnSubset) {
  json obj = {{"status",
               {{"conditions",
                 {{{"type", "Reconciling"}, {"status", "True"}},
                  {{"type", "Ready"}, {"status", "False"}, {"message", "boom"}}}}}}};
  EXPECT_EQ(EvalJsonPath(obj, ".status.conditions[?(@.type==\"Ready\")].status"), "False");
  EXPECT_EQ(EvalJsonPath(obj, ".status.conditions[1].message"), "boom");
  EXPECT_TRUE(EvalJsonPath(obj, ".status.missing").is_null());
}

}  // namespace
}  // namespace gitops::testing
