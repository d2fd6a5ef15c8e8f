// Issue 17, file-system confinement, against the real source-controller
// binary in Kubernetes mode: hostile repositories served over loopback
// (nginx + git http-backend) and GitRepositories applied with kubectl. Every
// escape points at a directory this test owns, which must stay untouched;
// failures must be clear, and the other GitRepositories keep reconciling.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/source-controller/kube/kube_fixture.h"

namespace gitops::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class GitRepositoryKubeConfinementTest : public SourceKubeTest {
 protected:
  void SetUp() override {
    SourceKubeTest::SetUp();
    if (HasFatalFailure()) return;
    CreateRepo();
    auto sha = repo_->Commit("first", {{"deploy/cm.yaml", "kind: ConfigMap\n"}});
    ASSERT_TRUE(sha.ok()) << sha.status();
    first_ = *sha;
    victim_ = dir_ + "/victim";
    ASSERT_TRUE(WriteFile(victim_ + "/a/keep.txt", "a\n").ok());
    ASSERT_TRUE(WriteFile(victim_ + "/b/keep.txt", "b\n").ok());
  }

  // A repository <dir_>/srv/<name>.git with `files` and `symlinks` (path ->
  // target) committed on main; its URL on the HTTP server (started first).
  std::string HostileRepo(const std::string& name,
                          const std::vector<std::pair<std::string, std::string>>& files,
                          const std::vector<std::pair<std::string, std::string>>& symlinks) {
    auto repo = TestRepo::Create(dir_ + "/srv", name + ".git");
    EXPECT_TRUE(repo.ok()) << repo.status();
    if (!repo.ok()) return "";
    for (const auto& [path, target] : symlinks) {
      const fs::path link = fs::path((*repo)->work().dir()) / path;
      fs::create_directories(link.parent_path());
      fs::create_symlink(target, link);
    }
    auto sha = (*repo)->Commit("hostile", files);
    EXPECT_TRUE(sha.ok()) << sha.status();
    hostile_.push_back(std::move(*repo));
    return http_->Url(name + ".git");
  }

  std::string first_;
  std::string victim_;
  std::vector<std::unique_ptr<TestRepo>> hostile_;
};

// Item 1: a symlink at the namespace level of storage made the start-up
// orphan collection delete every sub-directory of its target. Now symlinks
// are skipped and reported; real orphans are still collected.
TEST_F(GitRepositoryKubeConfinementTest, StartupOrphanCollectionNeverFollowsSymlinks) {
  const std::string kind_dir = storage() + "/gitrepository";
  fs::create_directories(kind_dir + "/flux-system");
  fs::create_directory_symlink(victim_, kind_dir + "/x");
  fs::create_directory_symlink(victim_, kind_dir + "/flux-system/linked");
  const std::string orphan = kind_dir + "/flux-system/gone";
  ASSERT_TRUE(WriteFile(orphan + "/" + std::string(64, 'c') + ".tar.gz", "old").ok());
  const std::vector<std::string> before = testing::ListTree(victim_);
  ASSERT_EQ(before.size(), 4u);

  StartHttp();
  StartController();
  auto synced =
      controller_->WaitForLogField("GitRepository cache synced", "objects", absl::Seconds(20));
  ASSERT_TRUE(synced.ok()) << synced.status() << controller_->ReadLog();
  EXPECT_EQ(testing::ListTree(victim_), before);
  EXPECT_FALSE(fs::exists(orphan)) << "a real orphan is still collected";
  EXPECT_TRUE(fs::is_symlink(kind_dir + "/x"));
  const std::string log = controller_->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "\"path\":\"gitrepository/x\"")) << log;
  EXPECT_TRUE(absl::StrContains(log, "\"path\":\"gitrepository/flux-system/linked\"")) << log;

  // Storage keeps working for real objects next to the planted links.
  Apply("good", url_, "  interval: 1m\n  ref:\n    branch: main\n");
  WaitForRevision("good", "main@sha1:" + first_);
  StopController();
  EXPECT_EQ(testing::ListTree(victim_), before);
}

// Item 2: a committed symlink in include[].toPath wrote into another
// namespace's storage and the git caches. Now IllegalPath, nothing planted.
TEST_F(GitRepositoryKubeConfinementTest, IncludeToPathThroughCommittedSymlinksIsIllegalPath) {
  StartHttp();
  const std::string other_ns = storage() + "/gitrepository/tenant-b";
  const std::string app_url =
      HostileRepo("app", {{"README.md", "app\n"}},
                  {{"st", other_ns}, {"gc", storage() + "/.git-cache"}, {"vic", victim_}});
  StartController();
  Apply("lib", url_, "  interval: 1m\n  ref:\n    branch: main\n");
  WaitForRevision("lib", "main@sha1:" + first_);
  // Another tenant's storage (made after start-up, which would collect it
  // as an orphan).
  fs::create_directories(other_ns + "/app");
  const std::vector<std::string> victim_before = testing::ListTree(victim_);
  for (const auto& [name, to_path, link] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"into-storage", "st/planted", "st"},
           {"into-cache", "gc/planted", "gc"},
           {"into-victim", "vic/a/planted", "vic"}}) {
    SCOPED_TRACE(name);
    Apply(name, app_url,
          absl::StrCat("  interval: 1m\n  ref:\n    branch: main\n  include:\n"
                       "  - repository:\n      name: lib\n    fromPath: deploy\n    toPath: ",
                       to_path, "\n"));
    json obj = ExpectFailure(
        name, {"StorageOperationFailed",
               "IllegalPath",
               {absl::StrCat("path calculation for include 'lib' failed: toPath '", to_path,
                             "' crosses the symbolic link '", link, "' in the repository")}});
    EXPECT_FALSE(obj["status"].contains("artifact")) << obj.dump();
  }
  std::vector<std::string> planted;
  for (const std::string& p : testing::ListTree(storage())) {
    if (absl::StrContains(p, "planted") || absl::StrContains(p, "cm.yaml")) planted.push_back(p);
  }
  EXPECT_TRUE(planted.empty()) << planted[0];
  EXPECT_EQ(testing::ListTree(other_ns), std::vector<std::string>{"app"});
  EXPECT_EQ(testing::ListTree(victim_), victim_before);
  // The included source is unaffected.
  EXPECT_EQ(Condition(Get("lib"), "Ready").value("status", ""), "True");
  // Failed runs are retried: stop first, so no checkout is in flight.
  StopController();
  ExpectNothingHalfWritten();
}

// Item 4: a committed .sourceignore symlink to a secret (a file this test
// owns, standing for /etc/shadow) or to a FIFO (which blocked a worker for
// ever, ignoring spec.timeout and SIGTERM). Each fails at once with a clear
// message, nothing of the secret leaks, and with two workers both blocked
// before, other GitRepositories still reconcile and SIGTERM stops cleanly.
TEST_F(GitRepositoryKubeConfinementTest, HostileSourceIgnoreFailsClearlyAndOthersReconcile) {
  StartHttp();
  const std::string secret = "root:$6$hash-9c0ffee1:19000:0:99999:7:::";
  ASSERT_TRUE(WriteFile(dir_ + "/shadow", secret + "\n").ok());
  ASSERT_EQ(mkfifo((dir_ + "/fifo-1").c_str(), 0600), 0);
  ASSERT_EQ(mkfifo((dir_ + "/fifo-2").c_str(), 0600), 0);
  struct Case {
    std::string name, ignore_path, target;
  };
  const std::vector<Case> cases = {
      {"shadow", ".sourceignore", dir_ + "/shadow"},
      {"fifo-1", ".sourceignore", dir_ + "/fifo-1"},
      {"fifo-2", "deploy/.sourceignore", dir_ + "/fifo-2"},
  };
  for (const Case& c : cases) {
    const std::string url =
        HostileRepo(c.name, {{"deploy/cm.yaml", "kind: ConfigMap\n"}}, {{c.ignore_path, c.target}});
    Apply(c.name, url, "  interval: 1m\n  timeout: 30s\n  ref:\n    branch: main\n");
  }
  StartController({"--concurrent=2"});
  Apply("good", url_, "  interval: 1m\n  ref:\n    branch: main\n");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ExpectFailure(c.name,
                  {"StorageOperationFailed",
                   "SourceIgnoreError",
                   {absl::StrCat("failed to load source ignore patterns from repository: "
                                 "load .sourceignore files: refusing to read ",
                                 c.ignore_path, ": it is a symbolic link, not a regular file")}});
  }
  WaitForRevision("good", "main@sha1:" + first_);
  // Still reconciling after the failures: a new commit is picked up.
  auto second = repo_->Commit("second", {{"deploy/cm.yaml", "kind: ConfigMap # 2\n"}});
  ASSERT_TRUE(second.ok());
  RequestReconcile("good", "after-hostile");
  WaitForRevision("good", "main@sha1:" + *second);
  ExpectNoLeak({"hash-9c0ffee1"});
  StopController();  // a clean exit within the grace period
  ExpectNothingHalfWritten();
}

// Item 9: a checkout failure names the path inside the repository, not the
// controller's work directory. The tree has a file and a directory both
// named "x", so the checkout's mkdir of "x" fails.
TEST_F(GitRepositoryKubeConfinementTest, CheckoutErrorsNamePathsInsideTheRepository) {
  StartHttp();
  auto dup = TestRepo::Create(dir_ + "/srv", "dup.git");
  ASSERT_TRUE(dup.ok()) << dup.status();
  ASSERT_TRUE((*dup)->Commit("base", {{"f", "hi\n"}}).ok());
  auto sh = [&](const std::string& cmd) {
    auto out = RunCommand({"sh", "-c", cmd}, absl::Seconds(30), (*dup)->work().dir());
    EXPECT_TRUE(out.ok()) << cmd << ": " << out.status();
    return out.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*out)) : "";
  };
  const std::string blob = sh("git rev-parse HEAD:f");
  const std::string sub = sh("printf '100644 blob " + blob + "\\tf\\n' | git mktree");
  const std::string tree =
      sh("printf '040000 tree " + sub + "\\tx\\n100644 blob " + blob + "\\tx\\n' | git mktree");
  const std::string commit = sh("git commit-tree " + tree + " -m dup");
  sh("git update-ref refs/heads/main " + commit);
  ASSERT_TRUE((*dup)->Push().ok());

  StartController();
  Apply("dup", http_->Url("dup.git"), "  interval: 1m\n  ref:\n    branch: main\n");
  json obj = ExpectFailure("dup", {"FetchFailed", "GitOperationFailed", {"mkdir x: File exists"}});
  const std::string message = ReadyMessage(obj);
  EXPECT_FALSE(absl::StrContains(message, storage())) << message;
  EXPECT_FALSE(absl::StrContains(message, ".work")) << message;
  for (const json& e : EventsFor("dup")) {
    EXPECT_FALSE(absl::StrContains(e.value("message", ""), storage())) << e.dump();
  }
}

}  // namespace
}  // namespace gitops::testing
