#include "kustomize-controller/kustomize/build.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::kustomize {
namespace {

using ::gitops::testing::MakeTempDir;
using ::gitops::testing::RemoveTree;
using ::gitops::testing::WriteFile;

constexpr char kCm[] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n";

std::string Cm(const std::string& name) {
  std::string s = kCm;
  return s.replace(s.find("%s"), 2, name);
}

class BuildYamlTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = MakeTempDir("kz-build"); }
  void TearDown() override { RemoveTree(root_); }
  std::string root_;
};

TEST_F(BuildYamlTest, GeneratesKustomizationForPlainDirectory) {
  ASSERT_TRUE(WriteFile(root_ + "/app/b.yaml", Cm("b")).ok());
  ASSERT_TRUE(WriteFile(root_ + "/app/a.yml", Cm("a")).ok());
  ASSERT_TRUE(WriteFile(root_ + "/app/notes.txt", "ignored").ok());
  ASSERT_TRUE(WriteFile(root_ + "/app/sub/c.yaml", Cm("c")).ok());
  ASSERT_TRUE(
      WriteFile(root_ + "/app/kz/kustomization.yaml", "resources:\n- d.yaml\nnamePrefix: p-\n")
          .ok());
  ASSERT_TRUE(WriteFile(root_ + "/app/kz/d.yaml", Cm("d")).ok());
  absl::StatusOr<std::string> out = BuildYaml(root_, "app");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p-d\n");
}

TEST_F(BuildYamlTest, UsesExistingKustomization) {
  ASSERT_TRUE(
      WriteFile(root_ + "/k/kustomization.yaml", "resources:\n- a.yaml\nnamespace: ns\n").ok());
  ASSERT_TRUE(WriteFile(root_ + "/k/a.yaml", Cm("a")).ok());
  ASSERT_TRUE(WriteFile(root_ + "/k/unlisted.yaml", Cm("z")).ok());
  absl::StatusOr<std::string> out = BuildYaml(root_, "./k");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ns\n");
}

TEST_F(BuildYamlTest, RefusesToReadOutsideRoot) {
  std::string outside = MakeTempDir("kz-outside");
  ASSERT_TRUE(WriteFile(outside + "/base/kustomization.yaml", "resources:\n- a.yaml\n").ok());
  ASSERT_TRUE(WriteFile(outside + "/base/a.yaml", Cm("a")).ok());
  ASSERT_TRUE(
      WriteFile(root_ + "/k/kustomization.yaml", "resources:\n- " + outside + "/base\n").ok());
  absl::StatusOr<std::string> out = BuildYaml(root_, "k");
  RemoveTree(outside);
  EXPECT_FALSE(out.ok());
}

TEST_F(BuildYamlTest, RefusesSymlinkEscapingRoot) {
  std::string outside = MakeTempDir("kz-outside");
  ASSERT_TRUE(WriteFile(outside + "/secret.yaml", Cm("secret")).ok());
  ASSERT_TRUE(WriteFile(root_ + "/k/kustomization.yaml", "resources:\n- link.yaml\n").ok());
  ASSERT_EQ(symlink((outside + "/secret.yaml").c_str(), (root_ + "/k/link.yaml").c_str()), 0);
  absl::StatusOr<std::string> out = BuildYaml(root_, "k");
  RemoveTree(outside);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("not in or below"), absl::string_view::npos)
      << out.status();
}

TEST_F(BuildYamlTest, ConcurrentBuildsAgree) {
  ASSERT_TRUE(WriteFile(root_ + "/k/kustomization.yaml",
                        "resources:\n- a.yaml\nnamePrefix: p-\nconfigMapGenerator:\n- name: g\n"
                        "  literals: [x=1]\n")
                  .ok());
  ASSERT_TRUE(WriteFile(root_ + "/k/a.yaml", Cm("a")).ok());
  absl::StatusOr<std::string> want = BuildYaml(root_, "k");
  ASSERT_TRUE(want.ok()) << want.status();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        absl::StatusOr<std::string> got = BuildYaml(root_, "k");
        if (!got.ok() || *got != *want) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(BuildYamlTest, RefusesPathOutsideRoot) {
  std::string outside = MakeTempDir("kz-outside");
  ASSERT_TRUE(WriteFile(outside + "/a.yaml", Cm("a")).ok());
  absl::StatusOr<std::string> out =
      BuildYaml(root_, "../" + outside.substr(outside.rfind('/') + 1));
  ASSERT_EQ(symlink(outside.c_str(), (root_ + "/escape").c_str()), 0);
  absl::StatusOr<std::string> via_link = BuildYaml(root_, "escape");
  RemoveTree(outside);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_EQ(via_link.status().code(), absl::StatusCode::kInvalidArgument) << via_link.status();
  // The root itself is a valid path.
  ASSERT_EQ(unlink((root_ + "/escape").c_str()), 0);
  absl::StatusOr<std::string> root_itself = BuildYaml(root_, ".");
  EXPECT_TRUE(root_itself.ok()) << root_itself.status();
}

TEST_F(BuildYamlTest, MissingPathIsNotFound) {
  absl::StatusOr<std::string> out = BuildYaml(root_, "nope");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(BuildYamlTest, RemoteBasesAreUnimplemented) {
  ASSERT_TRUE(WriteFile(root_ + "/k/kustomization.yaml",
                        "resources:\n- https://github.com/org/repo//base?ref=v1\n")
                  .ok());
  absl::StatusOr<std::string> out = BuildYaml(root_, "k");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(BuildYamlTest, CommandPrintsStreamAndFailsOnError) {
  ASSERT_TRUE(WriteFile(root_ + "/k/kustomization.yaml", "resources:\n- a.yaml\n").ok());
  ASSERT_TRUE(WriteFile(root_ + "/k/a.yaml", Cm("a")).ok());
  EXPECT_EQ(RunBuildCommand(root_ + "/k"), 0);
  EXPECT_EQ(RunBuildCommand(root_ + "/missing"), 1);
}

}  // namespace
}  // namespace gitops::kustomize

namespace gitops::kustomize {
namespace {

class FluxOverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = gitops::testing::MakeTempDir("kz-flux");
    ASSERT_TRUE(gitops::testing::WriteFile(
                    root_ + "/app/deploy.yaml",
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
                    "  template:\n    spec:\n      containers:\n      - name: c\n"
                    "        image: nginx:1\n")
                    .ok());
    ASSERT_TRUE(gitops::testing::WriteFile(root_ + "/shared/cm.yaml",
                                           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                           "  name: shared\n")
                    .ok());
  }
  void TearDown() override { gitops::testing::RemoveTree(root_); }
  std::string root_;
};

TEST_F(FluxOverlayTest, AppliesTargetNamespacePrefixImagesPatchesAndMetadata) {
  FluxOverlay o;
  o.target_namespace = "prod";
  o.name_prefix = "p-";
  o.images.push_back({"nginx", "", "2", ""});
  FluxOverlay::Patch patch;
  patch.patch = "- op: add\n  path: /spec/replicas\n  value: 3\n";
  patch.has_target = true;
  patch.target.kind = "Deployment";
  o.patches.push_back(patch);
  o.common_labels["team"] = "blue";
  o.common_annotations["owner"] = "me";
  absl::StatusOr<std::string> out = BuildYaml(root_, "app", o);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    owner: me\n"
            "  labels:\n    team: blue\n  name: p-web\n  namespace: prod\nspec:\n  replicas: 3\n"
            "  template:\n    spec:\n"
            "      containers:\n      - image: nginx:2\n        name: c\n");
}

TEST_F(FluxOverlayTest, ReadsFilesOutsideTheKustomizationDirectoryButInsideRoot) {
  ASSERT_TRUE(gitops::testing::WriteFile(root_ + "/k/kustomization.yaml",
                                         "resources:\n- ../shared/cm.yaml\n")
                  .ok());
  absl::StatusOr<std::string> out = BuildYaml(root_, "k");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n");
}

}  // namespace
}  // namespace gitops::kustomize
