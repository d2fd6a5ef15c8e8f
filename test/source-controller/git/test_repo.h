// A source repository with a known history for the fetcher tests:
//   main:  c1 (tag v1.0.0, lightweight) - c2 (tag v1.1.0, annotated) - c4 (tag v2.0.0-rc.1)
//   dev:   c2 - c3            refs/pull/1/head -> c3
// served as bare repository <root>/repo.git.
#ifndef GITOPS_TEST_SOURCE_CONTROLLER_GIT_TEST_REPO_H_
#define GITOPS_TEST_SOURCE_CONTROLLER_GIT_TEST_REPO_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {

struct TestRepo {
  std::string root;  // temp dir: root/work (working repo), root/srv/repo.git (bare)
  std::string work;
  std::string serve_root;
  std::string bare;
  std::string c1, c2, c3, c4;
  std::string tag_object_v1_1_0;

  // Builds the history above under a fresh temp dir.
  static absl::StatusOr<TestRepo> Create(absl::string_view prefix) {
    TestRepo r;
    r.root = testing::MakeTempDir(prefix);
    r.work = r.root + "/work";
    r.serve_root = r.root + "/srv";
    r.bare = r.serve_root + "/repo.git";
    auto repo = testing::GitWorkRepo::Create(r.work, "main");
    if (!repo.ok()) return repo.status();
    auto c1 = repo->Commit("c1", {{"README.md", "hello\n"}, {"deploy/app.yaml", "kind: A\n"}});
    if (!c1.ok()) return c1.status();
    r.c1 = *c1;
    if (auto s = repo->Tag("v1.0.0"); !s.ok()) return s;
    auto c2 = repo->Commit("c2", {{"deploy/app.yaml", "kind: B\n"}});
    if (!c2.ok()) return c2.status();
    r.c2 = *c2;
    if (auto s = repo->AnnotatedTag("v1.1.0", "release 1.1.0"); !s.ok()) return s;
    auto tag_obj = repo->RevParse("refs/tags/v1.1.0");
    if (!tag_obj.ok()) return tag_obj.status();
    r.tag_object_v1_1_0 = *tag_obj;
    if (auto s = repo->CheckoutNewBranch("dev"); !s.ok()) return s;
    auto c3 = repo->Commit("c3", {{"dev.txt", "dev\n"}});
    if (!c3.ok()) return c3.status();
    r.c3 = *c3;
    if (auto s = repo->Checkout("main"); !s.ok()) return s;
    auto c4 = repo->Commit("c4", {{"deploy/app.yaml", "kind: C\n"}});
    if (!c4.ok()) return c4.status();
    r.c4 = *c4;
    if (auto s = repo->Tag("v2.0.0-rc.1"); !s.ok()) return s;
    if (auto s = testing::InitBareRepo(r.bare); !s.ok()) return s;
    if (auto s = repo->PushAll(r.bare); !s.ok()) return s;
    if (auto s = repo->Push(r.bare, r.c3, "refs/pull/1/head"); !s.ok()) return s;
    return r;
  }

  // Adds a commit on main and pushes it to the bare repo. Returns its sha.
  absl::StatusOr<std::string> PushNewCommit(absl::string_view file, absl::string_view content) {
    auto repo = testing::GitWorkRepo::Create(work, "main");  // re-init is harmless
    if (!repo.ok()) return repo.status();
    auto c =
        repo->Commit(absl::StrCat("update ", file), {{std::string(file), std::string(content)}});
    if (!c.ok()) return c.status();
    if (auto s = repo->Push(bare, "main", "refs/heads/main"); !s.ok()) return s;
    return c;
  }
};

// What every fetcher test starts from: a libgit2 fetcher and a scratch
// directory for caches and checkouts, removed after the test.
class FetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fetcher_ = NewLibgit2Fetcher();
    scratch_ = testing::MakeTempDir("fetch-scratch");
  }
  void TearDown() override { testing::RemoveTree(scratch_); }
  // <scratch>/<name>.
  std::string Dir(absl::string_view name) { return absl::StrCat(scratch_, "/", name); }

  std::unique_ptr<GitFetcher> fetcher_;
  std::string scratch_;
};

}  // namespace gitops::source

#endif  // GITOPS_TEST_SOURCE_CONTROLLER_GIT_TEST_REPO_H_
