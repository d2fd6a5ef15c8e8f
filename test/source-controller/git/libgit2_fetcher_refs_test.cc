// Ref kinds, caching and local transports of the libgit2 fetcher, against a
// real git daemon and local repositories.
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/git/test_repo.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using testing::ReadFile;

class FetcherRefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repo = TestRepo::Create("fetch-refs");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = *repo;
    auto daemon = testing::GitDaemon::Start(repo_.serve_root);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    fetcher_ = NewLibgit2Fetcher();
  }
  void TearDown() override {
    daemon_.reset();
    testing::RemoveTree(repo_.root);
  }

  GitFetchOptions Options(GitReference ref) {
    GitFetchOptions o;
    o.url = daemon_->Url("repo.git");
    o.ref = std::move(ref);
    o.timeout = absl::Seconds(20);
    return o;
  }
  std::string Dir(absl::string_view name) { return absl::StrCat(repo_.root, "/", name); }

  TestRepo repo_;
  std::unique_ptr<testing::GitDaemon> daemon_;
  std::unique_ptr<GitFetcher> fetcher_;
};

TEST_F(FetcherRefsTest, ResolvesAndChecksOutEveryRefKind) {
  struct Case {
    std::string name;
    GitReference ref;
    std::string revision;
    std::string ref_name;
    std::string app_yaml;  // content of deploy/app.yaml in the checkout
    bool has_dev_txt;
  };
  const std::vector<Case> cases = {
      {"branch",
       {"main", "", "", "", ""},
       "main@sha1:" + repo_.c4,
       "refs/heads/main",
       "kind: C\n",
       false},
      {"other branch",
       {"dev", "", "", "", ""},
       "dev@sha1:" + repo_.c3,
       "refs/heads/dev",
       "kind: B\n",
       true},
      {"lightweight tag",
       {"", "v1.0.0", "", "", ""},
       "v1.0.0@sha1:" + repo_.c1,
       "refs/tags/v1.0.0",
       "kind: A\n",
       false},
      {"annotated tag",
       {"", "v1.1.0", "", "", ""},
       "v1.1.0@sha1:" + repo_.c2,
       "refs/tags/v1.1.0",
       "kind: B\n",
       false},
      {"semver",
       {"main", "", "^1.0", "", ""},
       "v1.1.0@sha1:" + repo_.c2,
       "refs/tags/v1.1.0",
       "kind: B\n",
       false},
      {"semver prerelease",
       {"", "", ">=2.0.0-0", "", ""},
       "v2.0.0-rc.1@sha1:" + repo_.c4,
       "refs/tags/v2.0.0-rc.1",
       "kind: C\n",
       false},
      {"name pull ref",
       {"", "", "", "refs/pull/1/head", ""},
       "refs/pull/1/head@sha1:" + repo_.c3,
       "refs/pull/1/head",
       "kind: B\n",
       true},
      {"name branch ref",
       {"", "", "", "refs/heads/main", ""},
       "refs/heads/main@sha1:" + repo_.c4,
       "refs/heads/main",
       "kind: C\n",
       false},
      {"commit", {"", "", "", "", repo_.c1}, "sha1:" + repo_.c1, "", "kind: A\n", false},
      {"branch and commit",
       {"dev", "", "", "", repo_.c2},
       "dev@sha1:" + repo_.c2,
       "refs/heads/dev",
       "kind: B\n",
       false},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    GitFetchOptions o = Options(c.ref);
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_TRUE(resolved.ok()) << resolved.status();
    EXPECT_EQ(resolved->revision, c.revision);
    EXPECT_EQ(resolved->ref, c.ref_name);
    EXPECT_EQ(resolved->received_objects, 0);

    // Every case fetches into its own empty cache.
    std::string checkout = Dir(absl::StrCat("checkout-", i));
    auto fetched = fetcher_->FetchAndCheckout(o, Dir(absl::StrCat("cache-", i)), checkout);
    ++i;
    ASSERT_TRUE(fetched.ok()) << fetched.status();
    EXPECT_EQ(fetched->revision, c.revision);
    EXPECT_EQ(fetched->ref, c.ref_name);
    EXPECT_GT(fetched->received_objects, 0);
    auto app = ReadFile(checkout + "/deploy/app.yaml");
    ASSERT_TRUE(app.ok()) << app.status();
    EXPECT_EQ(*app, c.app_yaml);
    EXPECT_EQ(std::filesystem::exists(checkout + "/dev.txt"), c.has_dev_txt);
    EXPECT_FALSE(std::filesystem::exists(checkout + "/.git"));
  }
}

TEST_F(FetcherRefsTest, EmptyRefMeansBranchMaster) {
  // The fixture has no master: Flux's default branch is "master".
  auto resolved = fetcher_->ResolveRemote(Options({}));
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(resolved.status().message().find("branch 'master' not found"), std::string::npos)
      << resolved.status();
  auto repo = testing::GitWorkRepo::Create(repo_.work);
  ASSERT_TRUE(repo.ok());
  ASSERT_TRUE(repo->Push(repo_.bare, repo_.c2, "refs/heads/master").ok());
  resolved = fetcher_->ResolveRemote(Options({}));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->revision, "master@sha1:" + repo_.c2);
}

TEST_F(FetcherRefsTest, SecondFetchReceivesOnlyNewObjects) {
  GitFetchOptions o = Options({"main", "", "", "", ""});
  std::string cache = Dir("cache");
  auto first = fetcher_->FetchAndCheckout(o, cache, Dir("co1"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GE(first->received_objects, 10);  // 3 commits, their trees and blobs

  // Nothing changed: no download at all.
  auto same = fetcher_->FetchAndCheckout(o, cache, Dir("co2"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->revision, first->revision);
  EXPECT_EQ(same->received_objects, 0);

  // One new commit touching one file: commit + root tree + blob.
  auto c5 = repo_.PushNewCommit("new.txt", "new\n");
  ASSERT_TRUE(c5.ok()) << c5.status();
  auto second = fetcher_->FetchAndCheckout(o, cache, Dir("co3"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->revision, "main@sha1:" + *c5);
  EXPECT_GT(second->received_objects, 0);
  EXPECT_LE(second->received_objects, 4);
  EXPECT_LT(second->received_objects, first->received_objects);
  EXPECT_EQ(*ReadFile(Dir("co3") + "/new.txt"), "new\n");
}

TEST_F(FetcherRefsTest, ResolveRemoteSeesNewCommitWithoutDownloading) {
  GitFetchOptions o = Options({"main", "", "", "", ""});
  auto before = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->commit, repo_.c4);
  auto c5 = repo_.PushNewCommit("moved.txt", "x\n");
  ASSERT_TRUE(c5.ok()) << c5.status();
  auto after = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->revision, "main@sha1:" + *c5);
  EXPECT_EQ(after->received_objects, 0);
  EXPECT_EQ(after->received_bytes, 0);
}

TEST_F(FetcherRefsTest, CachedPinnedCommitNeedsNoNetwork) {
  GitFetchOptions o = Options({"", "", "", "", repo_.c2});
  std::string cache = Dir("cache");
  ASSERT_TRUE(fetcher_->FetchAndCheckout(o, cache, Dir("co1")).ok());
  daemon_.reset();  // the server is gone
  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->revision, "sha1:" + repo_.c2);
  auto again = fetcher_->FetchAndCheckout(o, cache, Dir("co2"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->received_objects, 0);
  EXPECT_EQ(*ReadFile(Dir("co2") + "/deploy/app.yaml"), "kind: B\n");
}

TEST_F(FetcherRefsTest, MissingRefsAreNotFoundNamingUrlAndRef) {
  struct Case {
    std::string name;
    GitReference ref;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"branch", {"nope", "", "", "", ""}, "branch 'nope' not found"},
      {"tag", {"", "v9.9.9", "", "", ""}, "tag 'v9.9.9' not found"},
      {"semver", {"", "", ">=5.0.0", "", ""}, "no tag matches semver range '>=5.0.0'"},
      {"name", {"", "", "", "refs/pull/9/head", ""}, "ref 'refs/pull/9/head' not found"},
      {"commit", {"", "", "", "", std::string(40, 'e')}, "not found"},
      {"commit not on branch", {"dev", "", "", "", repo_.c4}, "not found in branch 'dev'"},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    GitFetchOptions o = Options(c.ref);
    auto fetched =
        fetcher_->FetchAndCheckout(o, Dir(absl::StrCat("c", i)), Dir(absl::StrCat("o", i)));
    ++i;
    ASSERT_FALSE(fetched.ok());
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kNotFound) << fetched.status();
    EXPECT_NE(fetched.status().message().find(c.message_part), std::string::npos)
        << fetched.status();
    EXPECT_NE(fetched.status().message().find(o.url), std::string::npos) << fetched.status();
  }
}

TEST_F(FetcherRefsTest, CheckoutKeepsModesSymlinksAndSubmoduleDirs) {
  auto repo = testing::GitWorkRepo::Create(repo_.work);
  ASSERT_TRUE(repo.ok());
  ASSERT_TRUE(repo->CheckoutNewBranch("modes").ok());
  namespace fs = std::filesystem;
  ASSERT_TRUE(testing::WriteFile(repo_.work + "/bin/run.sh", "#!/bin/sh\necho hi\n").ok());
  fs::permissions(repo_.work + "/bin/run.sh", fs::perms::owner_exec, fs::perm_options::add);
  ASSERT_TRUE(testing::WriteFile(repo_.work + "/empty.txt", "").ok());
  // A symlink "link" -> "README.md" and a submodule entry "vendor/sub".
  fs::create_symlink("README.md", repo_.work + "/link");
  ASSERT_TRUE(testing::Git(repo_.work, {"add", "-A"}).ok());
  ASSERT_TRUE(testing::Git(repo_.work, {"update-index", "--add", "--cacheinfo",
                                        "160000," + repo_.c1 + ",vendor/sub"})
                  .ok());
  ASSERT_TRUE(testing::Git(repo_.work, {"commit", "--quiet", "-m", "modes"}).ok());
  ASSERT_TRUE(repo->Push(repo_.bare, "modes", "refs/heads/modes").ok());
  ASSERT_TRUE(repo->Checkout("main").ok());

  std::string co = Dir("co");
  auto fetched = fetcher_->FetchAndCheckout(Options({"modes", "", "", "", ""}), Dir("cache"), co);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_NE(fs::status(co + "/bin/run.sh").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_EQ(fs::status(co + "/README.md").permissions() & fs::perms::owner_exec, fs::perms::none);
  ASSERT_TRUE(fs::is_symlink(co + "/link"));
  EXPECT_EQ(fs::read_symlink(co + "/link").string(), "README.md");
  EXPECT_TRUE(fs::is_directory(co + "/vendor/sub"));
  EXPECT_TRUE(fs::is_empty(co + "/vendor/sub"));
  EXPECT_EQ(fs::file_size(co + "/empty.txt"), 0u);
}

TEST_F(FetcherRefsTest, RefusesTreeEntriesThatEscapeTheCheckout) {
  // git mktree accepts names a checkout must never write.
  for (const std::string& name : {std::string(".."), std::string(".GIT")}) {
    SCOPED_TRACE(name);
    auto blob = testing::Git(repo_.bare, {"hash-object", "-w", "--stdin"});
    ASSERT_TRUE(blob.ok()) << blob.status();
    std::string listing = repo_.root + "/listing";
    ASSERT_TRUE(testing::WriteFile(listing, "100644 blob " + *blob + "\t" + name + "\n").ok());
    auto tree =
        testing::RunCommand({"sh", "-c", "git -C '" + repo_.bare + "' mktree < '" + listing + "'"});
    ASSERT_TRUE(tree.ok()) << tree.status();
    std::string tree_id = std::string(absl::StripTrailingAsciiWhitespace(*tree));
    auto commit = testing::Git(repo_.bare, {"commit-tree", tree_id, "-m", "evil"});
    ASSERT_TRUE(commit.ok()) << commit.status();
    ASSERT_TRUE(testing::Git(repo_.bare, {"update-ref", "refs/heads/evil", *commit}).ok());
    std::string co = Dir("co-evil" + std::to_string(name.size()));
    auto fetched = fetcher_->FetchAndCheckout(Options({"evil", "", "", "", ""}),
                                              Dir("cache-evil" + std::to_string(name.size())), co);
    ASSERT_FALSE(fetched.ok());
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDataLoss) << fetched.status();
    EXPECT_NE(fetched.status().message().find("refusing tree entry"), std::string::npos);
    EXPECT_TRUE(std::filesystem::is_empty(co));
  }
}

TEST_F(FetcherRefsTest, MissingRepositoryIsNotFound) {
  for (const std::string& url :
       {daemon_->Url("nope.git"), "file://" + repo_.root + "/nope.git", repo_.root + "/nope.git"}) {
    SCOPED_TRACE(url);
    GitFetchOptions o = Options({"main", "", "", "", ""});
    o.url = url;
    auto resolved = fetcher_->ResolveRemote(o);
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kNotFound) << resolved.status();
    auto fetched = fetcher_->FetchAndCheckout(o, Dir("cache-nope"), Dir("co-nope"));
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kNotFound) << fetched.status();
  }
}

TEST_F(FetcherRefsTest, InvalidUrlsAndRefsAreInvalidArgument) {
  struct Case {
    std::string name;
    std::string url;
    GitReference ref;
  };
  const std::vector<Case> cases = {
      {"scheme", "ftp://127.0.0.1/repo.git", {"main", "", "", "", ""}},
      {"scp-like", "git@127.0.0.1:repo.git", {"main", "", "", "", ""}},
      {"bad semver", daemon_->Url("repo.git"), {"", "", "not a range", "", ""}},
      {"short commit", daemon_->Url("repo.git"), {"", "", "", "", "abc"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    GitFetchOptions o = Options(c.ref);
    o.url = c.url;
    EXPECT_EQ(fetcher_->ResolveRemote(o).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(fetcher_->FetchAndCheckout(o, Dir("cache-x"), Dir("co-x")).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(FetcherRefsTest, FetchesOverFileUrlsAndLocalPaths) {
  for (const std::string& url : {"file://" + repo_.bare, repo_.bare}) {
    SCOPED_TRACE(url);
    GitFetchOptions o = Options({"", "v1.1.0", "", "", ""});
    o.url = url;
    auto resolved = fetcher_->ResolveRemote(o);
    ASSERT_TRUE(resolved.ok()) << resolved.status();
    EXPECT_EQ(resolved->revision, "v1.1.0@sha1:" + repo_.c2);
    std::string tag = url == repo_.bare ? "path" : "file";
    auto fetched = fetcher_->FetchAndCheckout(o, Dir("cache-" + tag), Dir("co-" + tag));
    ASSERT_TRUE(fetched.ok()) << fetched.status();
    EXPECT_EQ(fetched->revision, "v1.1.0@sha1:" + repo_.c2);
    EXPECT_EQ(*ReadFile(Dir("co-" + tag) + "/deploy/app.yaml"), "kind: B\n");
  }
}

TEST_F(FetcherRefsTest, RefusesNonEmptyCheckoutDir) {
  ASSERT_TRUE(testing::WriteFile(Dir("co/file"), "x").ok());
  auto fetched =
      fetcher_->FetchAndCheckout(Options({"main", "", "", "", ""}), Dir("cache"), Dir("co"));
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FetcherRefsTest, ConcurrentFetchesIntoDifferentCaches) {
  constexpr int kThreads = 4;
  std::vector<absl::StatusOr<GitRevision>> results(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      GitReference ref = t % 2 == 0 ? GitReference{"main", "", "", "", ""}
                                    : GitReference{"", "v1.0.0", "", "", ""};
      results[t] = fetcher_->FetchAndCheckout(Options(ref), Dir(absl::StrCat("cc", t)),
                                              Dir(absl::StrCat("co", t)));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE(t);
    ASSERT_TRUE(results[t].ok()) << results[t].status();
    EXPECT_EQ(results[t]->commit, t % 2 == 0 ? repo_.c4 : repo_.c1);
  }
}

TEST_F(FetcherRefsTest, ConcurrentFetchesIntoTheSameCacheAreSerialized) {
  constexpr int kThreads = 3;
  std::vector<absl::StatusOr<GitRevision>> results(kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      GitReference ref = t == 0 ? GitReference{"main", "", "", "", ""}
                                : GitReference{"", "", "", "refs/pull/1/head", ""};
      results[t] =
          fetcher_->FetchAndCheckout(Options(ref), Dir("shared-cache"), Dir(absl::StrCat("co", t)));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE(t);
    ASSERT_TRUE(results[t].ok()) << results[t].status();
    EXPECT_EQ(results[t]->commit, t == 0 ? repo_.c4 : repo_.c3);
    EXPECT_TRUE(std::filesystem::exists(Dir(absl::StrCat("co", t)) + "/deploy/app.yaml"));
  }
}

}  // namespace
}  // namespace gitops::source
