// Issue 17 against the reconciler with real things (libgit2 on file://
// repositories, storage in a temp dir): repository content cannot make the
// controller write, read or delete outside the checkout, and status messages
// name paths inside the repository. Every escape points at a directory this
// test owns, which must stay untouched.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "source-controller/controller/reconciler.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

namespace fs = std::filesystem;

constexpr char kNamespace[] = "flux-system";

class ReconcilerConfinementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = testing::MakeTempDir("reconciler-confinement");
    auto storage = ArtifactStorage::Create(tmp_ + "/storage");
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = *std::move(storage);
    git_ = NewLibgit2Fetcher();
    ReconcilerOptions options;
    options.cache_root = tmp_ + "/cache";
    options.work_root = tmp_ + "/work";
    options.advertised_address = "source-controller.test:9090";
    reconciler_ = std::make_unique<GitRepositoryReconciler>(
        ReconcilerDeps{git_.get(), storage_.get(), &hub_}, options);
    // The victim: stands for another namespace's storage, a git cache or
    // any directory of the host.
    victim_ = tmp_ + "/victim";
    ASSERT_TRUE(testing::WriteFile(victim_ + "/keep/keep.txt", "keep\n").ok());
  }
  void TearDown() override { testing::RemoveTree(tmp_); }

  // A repository named `name` whose work tree `prepare` fills (symlinks
  // included), committed and pushed; its GitRepository object.
  GitRepository MakeRepo(const std::string& name,
                         const std::vector<std::pair<std::string, std::string>>& files,
                         const std::vector<std::pair<std::string, std::string>>& symlinks = {}) {
    auto work = testing::GitWorkRepo::Create(tmp_ + "/src/" + name + "-work", "main");
    EXPECT_TRUE(work.ok()) << work.status();
    for (const auto& [path, target] : symlinks) {
      fs::create_directories(fs::path(work->dir() + "/" + path).parent_path());
      fs::create_symlink(target, work->dir() + "/" + path);
    }
    EXPECT_TRUE(work->Commit("content", files).ok());
    const std::string bare = tmp_ + "/src/" + name + ".git";
    EXPECT_TRUE(testing::InitBareRepo(bare).ok());
    EXPECT_TRUE(work->PushAll(bare).ok());
    GitRepository repo;
    repo.namespace_name = kNamespace;
    repo.name = name;
    repo.spec.url = "file://" + bare;
    repo.spec.ref.branch = "main";
    repo.spec.interval = absl::Minutes(1);
    repo.spec.timeout = absl::Seconds(20);
    return repo;
  }
  const Condition* Cond(const GitRepository& repo, absl::string_view type) const {
    return FindCondition(repo.status.conditions, type);
  }
  // The work root holds no checkout after a run.
  void ExpectNoWorkLeft() { EXPECT_TRUE(testing::ListTree(tmp_ + "/work").empty()); }

  std::string tmp_;
  std::string victim_;
  std::unique_ptr<ArtifactStorage> storage_;
  std::unique_ptr<GitFetcher> git_;
  ArtifactEventHub hub_;
  std::unique_ptr<GitRepositoryReconciler> reconciler_;
  const absl::Time t0_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
};

// Item 2: a committed symlink in toPath took the included artifact into
// another namespace's storage (or anywhere). Now IllegalPath, as Flux names
// a path calculation failure, and the target stays untouched.
TEST_F(ReconcilerConfinementTest, IncludeToPathThroughACommittedSymlinkIsIllegalPath) {
  GitRepository lib = MakeRepo("lib", {{"deploy/lib.yaml", "kind: Lib\n"}});
  ASSERT_TRUE(reconciler_->Reconcile(lib, GitCredentials{}, t0_).ok());
  ASSERT_TRUE(lib.status.artifact.has_value());
  const std::string other_ns = storage_->root() + "/gitrepository/other-ns";
  fs::create_directories(other_ns + "/app");
  GitRepository app = MakeRepo("app", {{"README.md", "hi\n"}},
                               {{"st", other_ns}, {"sub/vic", victim_}, {"rel", "../../.."}});
  const std::vector<std::string> victim_before = testing::ListTree(victim_);
  const std::vector<std::string> storage_before = testing::ListTree(other_ns);
  struct Case {
    std::string to_path;
    std::string link;
  };
  const std::vector<Case> cases = {
      {"st/planted", "st"},       {"st", "st"},
      {"./x/../st/p", "st"},      {"../../st/planted", "st"},
      {"sub/vic/a/b", "sub/vic"}, {"rel/escape", "rel"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.to_path);
    app.spec.include = {GitRepositoryInclude{"lib", "deploy", c.to_path}};
    ReconcileInputs in;
    in.includes.push_back(*lib.status.artifact);
    ReconcileOutcome o = reconciler_->Reconcile(app, in, t0_);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.reason, "IllegalPath");
    const Condition* failed = Cond(app, kStorageOperationFailedCondition);
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ(failed->reason, "IllegalPath");
    EXPECT_EQ(failed->message,
              absl::StrCat("path calculation for include 'lib' failed: toPath '", c.to_path,
                           "' crosses the symbolic link '", c.link, "' in the repository"));
    EXPECT_EQ(Cond(app, kReadyCondition)->status, "False");
    EXPECT_FALSE(app.status.artifact.has_value());
    EXPECT_EQ(testing::ListTree(victim_), victim_before);
    EXPECT_EQ(testing::ListTree(other_ns), storage_before);
    ExpectNoWorkLeft();
  }

  // A toPath that stays inside the checkout still works next to the links.
  app.spec.include = {GitRepositoryInclude{"lib", "deploy", "vendor/lib"}};
  ReconcileInputs in;
  in.includes.push_back(*lib.status.artifact);
  ReconcileOutcome o = reconciler_->Reconcile(app, in, t0_);
  ASSERT_TRUE(o.ok()) << o.error;
  EXPECT_EQ(Cond(app, kStorageOperationFailedCondition), nullptr);
  auto tar =
      testing::RunCommand({"tar", "-tzf", storage_->root() + "/" + app.status.artifact->path});
  ASSERT_TRUE(tar.ok()) << tar.status();
  EXPECT_TRUE(absl::StrContains(*tar, "vendor/lib/lib.yaml")) << *tar;
}

// fromPath is confined the same way inside the unpacked included artifact
// (our packer never stores symlinks; an artifact made elsewhere may).
TEST_F(ReconcilerConfinementTest, IncludeFromPathThroughASymlinkInTheArtifactIsRefused) {
  const std::string content = tmp_ + "/content";
  ASSERT_TRUE(testing::WriteFile(content + "/real/lib.yaml", "kind: Lib\n").ok());
  fs::create_directory_symlink("real", content + "/link");
  const SourceKey lib_key{kGitRepositoryKind, kNamespace, "lib"};
  auto temp = storage_->NewTempPath(lib_key);
  ASSERT_TRUE(temp.ok()) << temp.status();
  ASSERT_TRUE(testing::RunCommand({"tar", "-czf", *temp, "-C", content, "real", "link"}).ok());
  auto bytes = testing::ReadFile(*temp);
  ASSERT_TRUE(bytes.ok());
  auto stored = storage_->Commit(lib_key, *temp, common::Sha256Digest(*bytes));
  ASSERT_TRUE(stored.ok()) << stored.status();
  ArtifactStatus lib_artifact;
  lib_artifact.path = stored->path;
  lib_artifact.digest = stored->digest;
  lib_artifact.revision = "main@sha1:0000000000000000000000000000000000000000";
  lib_artifact.size = stored->size;

  GitRepository app = MakeRepo("app", {{"README.md", "hi\n"}});
  ReconcileInputs in;
  in.includes.push_back(lib_artifact);
  app.spec.include = {GitRepositoryInclude{"lib", "link", "vendor"}};
  ReconcileOutcome o = reconciler_->Reconcile(app, in, t0_);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.reason, "CopyFailure");
  EXPECT_EQ(Cond(app, kStorageOperationFailedCondition)->message,
            "failed to copy 'lib' include from link to vendor: fromPath 'link' crosses the "
            "symbolic link 'link' in the artifact");
  ExpectNoWorkLeft();

  app.spec.include = {GitRepositoryInclude{"lib", "real", "vendor"}};
  o = reconciler_->Reconcile(app, in, t0_);
  ASSERT_TRUE(o.ok()) << o.error;
}

// Item 4 through the reconciler: a committed .sourceignore symlink to a
// secret (the /etc/shadow case, here a file the test owns) fails the run
// with a clear message and the secret appears nowhere.
TEST_F(ReconcilerConfinementTest, SymlinkedSourceIgnoreFailsClearlyAndLeaksNothing) {
  const std::string secret = "root:$6$hash-4b1d9e:19000:0:99999:7:::";
  ASSERT_TRUE(testing::WriteFile(tmp_ + "/shadow", secret + "\n").ok());
  GitRepository app = MakeRepo("app", {{"deploy/app.yaml", "kind: ConfigMap\n"}},
                               {{".sourceignore", tmp_ + "/shadow"}});
  ReconcileOutcome o = reconciler_->Reconcile(app, ReconcileInputs{}, t0_);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.reason, "SourceIgnoreError");
  const Condition* ready = Cond(app, kReadyCondition);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->message,
            "failed to load source ignore patterns from repository: load .sourceignore files: "
            "refusing to read .sourceignore: it is a symbolic link, not a regular file; ignore "
            "files must be regular files in the repository, of at most 1048576 bytes");
  EXPECT_FALSE(absl::StrContains(ready->message, "hash-4b1d9e"));
  EXPECT_FALSE(absl::StrContains(ready->message, tmp_));
  EXPECT_FALSE(app.status.artifact.has_value());
  ExpectNoWorkLeft();
}

// Item 9: a checkout failure names the path in the repository, not the
// controller's work directory. A tree with a file and a directory of the
// same name ("x") makes the checkout's mkdir fail.
TEST_F(ReconcilerConfinementTest, CheckoutErrorsNamePathsInsideTheRepository) {
  auto work = testing::GitWorkRepo::Create(tmp_ + "/src/dup-work", "main");
  ASSERT_TRUE(work.ok());
  ASSERT_TRUE(work->Commit("base", {{"f", "hi\n"}}).ok());
  auto git = [&](const std::vector<std::string>& args, const std::string& input = "") {
    std::vector<std::string> argv = {"sh", "-c", ""};
    std::string cmd = "git";
    for (const std::string& a : args) cmd += " '" + a + "'";
    if (!input.empty()) cmd = "printf '" + input + "' | " + cmd;
    argv[2] = cmd;
    auto out = testing::RunCommand(argv, absl::Seconds(30), work->dir());
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*out)) : "";
  };
  const std::string blob = git({"rev-parse", "HEAD:f"});
  const std::string sub = git({"mktree"}, "100644 blob " + blob + "\\tf\\n");
  const std::string dup =
      git({"mktree"}, "040000 tree " + sub + "\\tx\\n100644 blob " + blob + "\\tx\\n");
  const std::string commit = git({"commit-tree", dup, "-m", "dup"});
  git({"update-ref", "refs/heads/main", commit});
  const std::string bare = tmp_ + "/src/dup.git";
  ASSERT_TRUE(testing::InitBareRepo(bare).ok());
  ASSERT_TRUE(work->PushAll(bare).ok());

  GitRepository repo;
  repo.namespace_name = kNamespace;
  repo.name = "dup";
  repo.spec.url = "file://" + bare;
  repo.spec.ref.branch = "main";
  repo.spec.timeout = absl::Seconds(20);
  ReconcileOutcome o = reconciler_->Reconcile(repo, ReconcileInputs{}, t0_);
  ASSERT_FALSE(o.ok());
  const Condition* failed = Cond(repo, kFetchFailedCondition);
  ASSERT_NE(failed, nullptr);
  EXPECT_TRUE(absl::StrContains(failed->message, "mkdir x: File exists")) << failed->message;
  EXPECT_FALSE(absl::StrContains(failed->message, tmp_ + "/work")) << failed->message;
  EXPECT_FALSE(absl::StrContains(failed->message, "checkout-")) << failed->message;
  ExpectNoWorkLeft();
}

// Item 1 through the reconciler: deleting a GitRepository whose storage or
// cache level was replaced by a symlink removes nothing behind the link.
TEST_F(ReconcilerConfinementTest, DeleteNeverFollowsASymlinkedStorageOrCacheLevel) {
  fs::create_directories(storage_->root() + "/gitrepository");
  fs::create_directory_symlink(victim_, storage_->root() + "/gitrepository/x");
  fs::create_directories(tmp_ + "/cache/gitrepository");
  fs::create_directory_symlink(victim_, tmp_ + "/cache/gitrepository/x");
  const std::vector<std::string> before = testing::ListTree(victim_);
  GitRepository gone;
  gone.namespace_name = "x";
  gone.name = "keep";
  absl::Status s = reconciler_->Delete(gone);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "is a symbolic link")) << s;
  EXPECT_EQ(testing::ListTree(victim_), before);
  EXPECT_TRUE(fs::is_regular_file(victim_ + "/keep/keep.txt"));
}

// A fetch into a cache path with a symlinked level is refused before
// anything is written through it.
TEST_F(ReconcilerConfinementTest, SymlinkedGitCacheLevelIsRefused) {
  GitRepository app = MakeRepo("app", {{"README.md", "hi\n"}});
  fs::create_directories(tmp_ + "/cache/gitrepository");
  fs::create_directory_symlink(victim_, tmp_ + "/cache/gitrepository/flux-system");
  const std::vector<std::string> before = testing::ListTree(victim_);
  ReconcileOutcome o = reconciler_->Reconcile(app, ReconcileInputs{}, t0_);
  ASSERT_FALSE(o.ok());
  const Condition* failed = Cond(app, kStorageOperationFailedCondition);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->message,
            "failed to create git cache directory: 'gitrepository/flux-system' is a symbolic "
            "link, not a directory; refusing to use it");
  EXPECT_EQ(testing::ListTree(victim_), before);
}

}  // namespace
}  // namespace gitops::source
