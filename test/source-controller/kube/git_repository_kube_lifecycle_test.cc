// A GitRepository's life in the source-controller binary (Kubernetes mode):
// ref changes, suspend/resume, reconcile requests, deletion, two objects on
// one URL, and 200 objects applied at once.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "test/source-controller/kube/kube_fixture.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string ConfigMap(const std::string& value) {
  return absl::StrCat(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: ", value, "\n");
}

class GitRepositoryKubeLifecycleTest : public SourceKubeTest {
 protected:
  void SetUp() override {
    SourceKubeTest::SetUp();
    if (HasFatalFailure()) return;
    CreateRepo();
    StartHttp();
  }

  std::string Commit(const std::string& value) {
    auto sha = repo_->Commit("set " + value, {{"apps/cm.yaml", ConfigMap(value)}});
    EXPECT_TRUE(sha.ok()) << sha.status();
    return sha.ok() ? *sha : "";
  }

  void Patch(const std::string& name, const json& patch) {
    auto out = Kubectl(
        {"patch", "gitrepository", name, "-n", kNamespace, "--type", "merge", "-p", patch.dump()});
    ASSERT_TRUE(out.ok()) << out.status();
  }

  // Fetches `name`'s artifact over gRPC; checks it against status and
  // returns apps/cm.yaml from it.
  std::string FetchedManifest(const std::string& name, const json& obj) {
    const std::string out = absl::StrCat(dir_, "/fetched-", name, "-", ++fetches_);
    auto fetched = Fetch(name, out);
    EXPECT_TRUE(fetched.ok()) << fetched.status();
    if (!fetched.ok()) return "";
    auto digest = common::Sha256File(out + ".tar.gz");
    EXPECT_TRUE(digest.ok()) << digest.status();
    if (digest.ok()) {
      EXPECT_EQ(*digest, Str(obj, {"status", "artifact", "digest"}));
    }
    auto manifest = ReadFile(out + "/apps/cm.yaml");
    EXPECT_TRUE(manifest.ok()) << manifest.status();
    return manifest.ok() ? *manifest : "";
  }

  std::string ArtifactFile(const json& obj) const {
    return absl::StrCat(storage(), "/", Str(obj, {"status", "artifact", "path"}));
  }
  std::string CacheDir(const std::string& name) const {
    return absl::StrCat(storage(), "/.git-cache/gitrepository/", kNamespace, "/", name);
  }
  std::string ArtifactDir(const std::string& name) const {
    return absl::StrCat(storage(), "/gitrepository/", kNamespace, "/", name);
  }

  int fetches_ = 0;
};

TEST_F(GitRepositoryKubeLifecycleTest, RefChangeSuspendResumeRequestedAtAndDelete) {
  const std::string c1 = Commit("v1");
  ASSERT_TRUE(repo_->work().AnnotatedTag("v1", "release v1").ok());
  auto tag_object = repo_->work().RevParse("v1");
  ASSERT_TRUE(tag_object.ok());
  ASSERT_NE(*tag_object, c1);  // annotated: the tag object is not the commit
  const std::string c2 = Commit("v2");
  StartController();
  Apply("app", url_, "  interval: 10m\n  ref:\n    branch: main\n");
  json obj = WaitForRevision("app", "main@sha1:" + c2);
  EXPECT_EQ(Int(obj, {"status", "observedGeneration"}), 1);
  EXPECT_EQ(obj["metadata"]["finalizers"], json::array({"finalizers.fluxcd.io"}));
  EXPECT_NE(FetchedManifest("app", obj).find("v: v2"), std::string::npos);
  WaitForEvent("app", "Normal", "NewArtifact");

  // requestedAt: with a 10m interval a new commit waits for a request; the
  // request is handled at once and recorded in status.
  const std::string c3 = Commit("v3");
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Revision(Get("app")), "main@sha1:" + c2);
  RequestReconcile("app", "2026-01-01T00:00:00Z");
  obj = WaitFor("app", [&](const json& o) {
    return Str(o, {"status", "lastHandledReconcileAt"}) == "2026-01-01T00:00:00Z" &&
           Revision(o) == "main@sha1:" + c3;
  });
  EXPECT_EQ(Condition(obj, "Ready").value("status", ""), "True") << obj.dump();

  // Suspended: neither a new commit nor a request is acted on.
  Patch("app", {{"spec", {{"suspend", true}}}});
  const std::string c4 = Commit("v4");
  RequestReconcile("app", "2026-01-02T00:00:00Z");
  absl::SleepFor(absl::Seconds(2));
  obj = Get("app");
  EXPECT_EQ(Revision(obj), "main@sha1:" + c3) << obj.dump();
  EXPECT_EQ(Str(obj, {"status", "lastHandledReconcileAt"}), "2026-01-01T00:00:00Z");
  EXPECT_EQ(Condition(obj, "Ready").value("status", ""), "True") << obj.dump();
  EXPECT_NE(FetchedManifest("app", obj).find("v: v3"), std::string::npos);
  // Resumed: the spec change reconciles at once, handling the pending request.
  Patch("app", {{"spec", {{"suspend", false}}}});
  obj = WaitForRevision("app", "main@sha1:" + c4);
  EXPECT_EQ(Str(obj, {"status", "lastHandledReconcileAt"}), "2026-01-02T00:00:00Z");
  EXPECT_EQ(Int(obj, {"status", "observedGeneration"}), 3);

  // Branch -> annotated tag: the revision names the tag and the peeled commit.
  Patch("app", {{"spec", {{"ref", {{"branch", nullptr}, {"tag", "v1"}}}}}});
  obj = WaitForRevision("app", "v1@sha1:" + c1);
  EXPECT_FALSE(absl::StrContains(obj.dump(), *tag_object)) << obj.dump();
  EXPECT_EQ(Int(obj, {"status", "observedGeneration"}), 4);
  EXPECT_NE(FetchedManifest("app", obj).find("v: v1"), std::string::npos);
  EXPECT_FALSE(HasCondition(obj, "ArtifactOutdated")) << obj.dump();

  // Delete: the finalizer removes the artifacts and the cache, then the
  // object goes, and the gRPC service no longer knows the source.
  const std::string artifact = ArtifactFile(obj);
  EXPECT_TRUE(fs::exists(artifact)) << artifact;
  EXPECT_TRUE(fs::exists(CacheDir("app")));
  auto deleted =
      Kubectl({"delete", "gitrepository", "app", "-n", kNamespace, "--wait", "--timeout=30s"});
  ASSERT_TRUE(deleted.ok()) << deleted.status() << controller_->ReadLog();
  EXPECT_FALSE(Kubectl({"get", "gitrepository", "app", "-n", kNamespace}).ok());
  EXPECT_FALSE(fs::exists(artifact));
  EXPECT_FALSE(fs::exists(ArtifactDir("app")));
  EXPECT_FALSE(fs::exists(CacheDir("app")));
  auto gone = Fetch("app", dir_ + "/gone");
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(absl::StrContains(gone.status().message(), "not found") ||
              absl::StrContains(gone.status().message(), "NOT_FOUND") ||
              absl::StrContains(gone.status().message(), "no artifact"))
      << gone.status();
}

TEST_F(GitRepositoryKubeLifecycleTest, SameUrlDifferentRefsShareNothing) {
  const std::string m1 = Commit("main-1");
  ASSERT_TRUE(repo_->work().CheckoutNewBranch("dev").ok());
  const std::string d1 = Commit("dev-1");
  StartController();
  Apply("a", url_, "  interval: 10m\n  ref:\n    branch: main\n");
  Apply("b", url_, "  interval: 10m\n  ref:\n    branch: dev\n");
  json a = WaitForRevision("a", "main@sha1:" + m1);
  json b = WaitForRevision("b", "dev@sha1:" + d1);
  EXPECT_NE(Str(a, {"status", "artifact", "digest"}), Str(b, {"status", "artifact", "digest"}));
  EXPECT_NE(Str(a, {"status", "artifact", "path"}), Str(b, {"status", "artifact", "path"}));
  EXPECT_NE(FetchedManifest("a", a).find("v: main-1"), std::string::npos);
  EXPECT_NE(FetchedManifest("b", b).find("v: dev-1"), std::string::npos);
  EXPECT_TRUE(fs::exists(CacheDir("a")));
  EXPECT_TRUE(fs::exists(CacheDir("b")));

  // Each follows its own ref: a dev commit moves b only.
  const std::string d2 = Commit("dev-2");
  RequestReconcile("a", "r1");
  RequestReconcile("b", "r1");
  b = WaitForRevision("b", "dev@sha1:" + d2);
  json a2 = WaitFor("a", [](const json& o) {
    return Str(o, {"status", "lastHandledReconcileAt"}) == "r1";
  });
  EXPECT_EQ(a2["status"]["artifact"], a["status"]["artifact"]);
  EXPECT_NE(FetchedManifest("b", b).find("v: dev-2"), std::string::npos);

  // Deleting a leaves b's artifact, cache and updates alone.
  auto deleted =
      Kubectl({"delete", "gitrepository", "a", "-n", kNamespace, "--wait", "--timeout=30s"});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_FALSE(fs::exists(ArtifactDir("a")));
  EXPECT_FALSE(fs::exists(CacheDir("a")));
  EXPECT_TRUE(fs::exists(ArtifactFile(b)));
  EXPECT_TRUE(fs::exists(CacheDir("b")));
  EXPECT_NE(FetchedManifest("b", Get("b")).find("v: dev-2"), std::string::npos);
  const std::string d3 = Commit("dev-3");
  RequestReconcile("b", "r2");
  b = WaitForRevision("b", "dev@sha1:" + d3);
  EXPECT_NE(FetchedManifest("b", b).find("v: dev-3"), std::string::npos);
  // b's cache survived a's deletion: the last fetch was incremental, only
  // the new commit's objects (commit, two trees, one blob) came over.
  const std::string log = controller_->ReadLog();
  std::string last;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "\"name\":\"b\"") &&
        absl::StrContains(line, "\"received_objects\":")) {
      last = std::string(line);
    }
  }
  ASSERT_FALSE(last.empty()) << log;
  EXPECT_TRUE(absl::StrContains(last, absl::StrCat("\"revision\":\"dev@sha1:", d3, "\""))) << last;
  EXPECT_TRUE(absl::StrContains(last, "\"received_objects\":\"4\"")) << last;
}

// 200 GitRepositories in one kubectl apply against one git server, four
// workers: all Ready with the same revision, no Warning, in bounded time.
TEST_F(GitRepositoryKubeLifecycleTest, TwoHundredObjectsAppliedAtOnceAllBecomeReady) {
  constexpr int kObjects = 200;
  const std::string sha = Commit("shared");
  StartController({"--concurrent=4"});
  std::string yaml;
  for (int i = 0; i < kObjects; ++i) {
    absl::StrAppend(&yaml, i == 0 ? "" : "---\n",
                    GitRepositoryYaml(absl::StrCat("repo-", i), url_,
                                      "  interval: 10m\n  ref:\n    branch: main\n"));
  }
  const absl::Time start = absl::Now();
  auto applied = TryApply(yaml);
  ASSERT_TRUE(applied.ok()) << applied.status();
  const absl::Duration apply_took = absl::Now() - start;

  const absl::Duration bound = absl::Seconds(45);
  int ready = 0;
  json list;
  while (absl::Now() - start < bound) {
    auto out = Kubectl({"get", "gitrepositories", "-n", kNamespace, "-o", "json"});
    ASSERT_TRUE(out.ok()) << out.status();
    list = json::parse(*out, nullptr, false);
    ready = 0;
    for (const json& item : list["items"]) {
      if (Condition(item, "Ready").value("status", "") == "True") ++ready;
    }
    if (ready == kObjects) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  const absl::Duration took = absl::Now() - start;
  std::printf("%d GitRepositories: kubectl apply %s, all Ready after %s (bound %s)\n", kObjects,
              absl::FormatDuration(apply_took).c_str(), absl::FormatDuration(took).c_str(),
              absl::FormatDuration(bound).c_str());
  ASSERT_EQ(ready, kObjects) << "after " << took;
  ASSERT_EQ(list["items"].size(), static_cast<size_t>(kObjects));
  for (const json& item : list["items"]) {
    EXPECT_EQ(Revision(item), "main@sha1:" + sha) << item.dump();
    EXPECT_EQ(Condition(item, "Ready").value("reason", ""), "Succeeded") << item.dump();
    EXPECT_FALSE(HasCondition(item, "FetchFailed")) << item.dump();
  }
  auto events = Kubectl({"get", "events", "-n", kNamespace, "-o", "json"});
  ASSERT_TRUE(events.ok());
  // Keep the parsed list alive: a range-for over a member of a temporary
  // dangles.
  const json event_list = json::parse(*events);
  for (const json& e : event_list["items"]) {
    EXPECT_NE(e.value("type", ""), "Warning") << e.dump();
  }
  EXPECT_FALSE(absl::StrContains(controller_->ReadLog(), "\"level\":\"error\""))
      << controller_->ReadLog();
}

}  // namespace
}  // namespace gitops::testing
