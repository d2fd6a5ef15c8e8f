#include "kustomize-controller/kustomize/patch.h"

#include "gtest/gtest.h"
#include "kustomize-controller/kustomize/yaml_io.h"

namespace gitops::kustomize {
namespace {

Node Y(const std::string& s) {
  absl::StatusOr<Node> n = ParseYamlDocument(s);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : Node();
}

TEST(StrategicMergeTest, MergesContainersByNamePatchOrderFirst) {
  Node t =
      Y("kind: Pod\nspec:\n  containers:\n  - name: a\n    image: x\n  - name: b\n    image: y\n");
  bool deleted = false;
  ASSERT_TRUE(ApplyStrategicMerge(
                  t,
                  Y("spec:\n  containers:\n  - name: b\n    image: z\n  - name: c\n    image: w\n"),
                  &deleted)
                  .ok());
  EXPECT_FALSE(deleted);
  EXPECT_EQ(
      EmitYaml(t),
      "kind: Pod\nspec:\n  containers:\n  - image: z\n    name: b\n  - image: w\n    name: c\n"
      "  - image: x\n    name: a\n");
}

TEST(StrategicMergeTest, ReplacesListsOfUnknownKinds) {
  Node t = Y("kind: Widget\nspec:\n  containers:\n  - name: a\n");
  bool deleted = false;
  ASSERT_TRUE(ApplyStrategicMerge(t, Y("spec:\n  containers:\n  - name: b\n"), &deleted).ok());
  EXPECT_EQ(EmitYaml(t), "kind: Widget\nspec:\n  containers:\n  - name: b\n");
}

TEST(StrategicMergeTest, NullDeletesAndDirectivesWork) {
  Node t = Y("kind: Pod\na: 1\nb:\n  c: 2\n  d: 3\nspec:\n  volumes:\n  - name: x\n  - name: y\n");
  bool deleted = false;
  ASSERT_TRUE(ApplyStrategicMerge(t,
                                  Y("a: null\nb:\n  $patch: replace\n  e: 4\nspec:\n  volumes:\n"
                                    "  - name: x\n    $patch: delete\n"),
                                  &deleted)
                  .ok());
  EXPECT_EQ(EmitYaml(t), "b:\n  e: 4\nkind: Pod\nspec:\n  volumes:\n  - name: \"y\"\n");
}

TEST(StrategicMergeTest, TopLevelDeleteMarksResource) {
  Node t = Y("a: 1\n");
  bool deleted = false;
  ASSERT_TRUE(ApplyStrategicMerge(t, Y("$patch: delete\n"), &deleted).ok());
  EXPECT_TRUE(deleted);
}

TEST(Json6902Test, AppliesOperations) {
  Node t = Y("a:\n  b: [1, 2]\nc: x\n");
  ASSERT_TRUE(ApplyJson6902(t, Y("- op: add\n  path: /a/b/-\n  value: 3\n"
                                 "- op: replace\n  path: /c\n  value: y\n"
                                 "- op: copy\n  from: /c\n  path: /d\n"
                                 "- op: move\n  from: /d\n  path: /e~1f\n"
                                 "- op: remove\n  path: /a/b/0\n"
                                 "- op: test\n  path: /c\n  value: y\n"))
                  .ok());
  EXPECT_EQ(EmitYaml(t), "a:\n  b:\n  - 2\n  - 3\nc: \"y\"\ne/f: \"y\"\n");
}

TEST(Json6902Test, FailsOnMissingPathAndFailedTest) {
  Node t = Y("a: 1\n");
  EXPECT_FALSE(ApplyJson6902(t, Y("- op: replace\n  path: /nope\n  value: 1\n")).ok());
  EXPECT_FALSE(ApplyJson6902(t, Y("- op: remove\n  path: /x/y\n")).ok());
  EXPECT_FALSE(ApplyJson6902(t, Y("- op: test\n  path: /a\n  value: 2\n")).ok());
  EXPECT_FALSE(ApplyJson6902(t, Y("- op: frobnicate\n  path: /a\n")).ok());
}

}  // namespace
}  // namespace gitops::kustomize
