// The libgit2 fetcher's checkout options against real servers on loopback:
// spec.recurseSubmodules (submodules, nested submodules, relative URLs,
// bumps, unreachable and missing submodules) and spec.sparseCheckout.
//
// Repositories (bare, under <root>/srv, served by git daemon and nginx):
//   leaf.git    leaf.txt, dir/x.txt
//   sub.git     sub.txt, nested -> leaf.git ("../leaf.git")
//   parent.git  README.md, apps/a.yaml, apps-old/b.yaml, apps.yaml,
//               infra/c.yaml, libs/sub -> sub.git ("../sub.git")
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/git/test_repo.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using testing::Git;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsEmptyDir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) && std::filesystem::is_empty(path, ec);
}

// Any ".git" below `dir`.
bool HasDotGit(const std::string& dir) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == ".git") return true;
  }
  return false;
}

// A work repository whose commits can carry gitlinks (written straight into
// the index, no clone needed) and a hand-written .gitmodules.
class SuperRepo {
 public:
  static absl::StatusOr<SuperRepo> Create(const std::string& dir) {
    auto repo = testing::GitWorkRepo::Create(dir, "main");
    if (!repo.ok()) return repo.status();
    return SuperRepo(dir);
  }
  // Writes `files`, sets `gitlinks` (path -> commit), commits everything.
  absl::StatusOr<std::string> Commit(
      absl::string_view message, const std::vector<std::pair<std::string, std::string>>& files,
      const std::vector<std::pair<std::string, std::string>>& gitlinks = {}) {
    for (const auto& [path, content] : files) {
      if (auto s = testing::WriteFile(absl::StrCat(dir_, "/", path), content); !s.ok()) return s;
      if (auto out = Git(dir_, {"add", path}); !out.ok()) return out.status();
    }
    for (const auto& [path, commit] : gitlinks) {
      auto out = Git(dir_, {"update-index", "--add", "--cacheinfo",
                            absl::StrCat("160000,", commit, ",", path)});
      if (!out.ok()) return out.status();
    }
    if (auto out = Git(dir_, {"commit", "--quiet", "--allow-empty", "-m", std::string(message)});
        !out.ok()) {
      return out.status();
    }
    return Git(dir_, {"rev-parse", "HEAD"});
  }
  absl::Status Push(const std::string& bare) {
    return Git(dir_, {"push", "--quiet", "--force", bare, "main:refs/heads/main"}).status();
  }

 private:
  explicit SuperRepo(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

std::string Gitmodules(const std::vector<std::pair<std::string, std::string>>& path_urls) {
  std::string out;
  for (const auto& [path, url] : path_urls) {
    absl::StrAppend(&out, "[submodule \"", path, "\"]\n\tpath = ", path, "\n\turl = ", url, "\n");
  }
  return out;
}

class FetcherCheckoutTest : public FetcherTest {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::MakeTempDir("fetch-checkout"));
    srv_ = new std::string(*root_ + "/srv");
    ASSERT_TRUE(BuildRepos().ok());
    auto daemon = testing::GitDaemon::Start(*srv_);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = daemon->release();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    testing::RemoveTree(*root_);
    delete root_;
    delete srv_;
  }

  static absl::Status BuildRepos() {
    const std::string& srv = *srv_;
    for (const char* name : {"leaf.git", "sub.git", "parent.git"}) {
      if (auto s = testing::InitBareRepo(absl::StrCat(srv, "/", name)); !s.ok()) return s;
    }
    auto leaf = testing::GitWorkRepo::Create(*root_ + "/leaf");
    if (!leaf.ok()) return leaf.status();
    auto leaf_c = leaf->Commit("leaf", {{"leaf.txt", "leaf 1\n"}, {"dir/x.txt", "x\n"}});
    if (!leaf_c.ok()) return leaf_c.status();
    if (auto s = leaf->PushAll(srv + "/leaf.git"); !s.ok()) return s;

    auto sub = SuperRepo::Create(*root_ + "/sub");
    if (!sub.ok()) return sub.status();
    auto sub_c = sub->Commit(
        "sub 1", {{"sub.txt", "sub 1\n"}, {".gitmodules", Gitmodules({{"nested", "../leaf.git"}})}},
        {{"nested", *leaf_c}});
    if (!sub_c.ok()) return sub_c.status();
    sub_c1_ = new std::string(*sub_c);
    if (auto s = sub->Push(srv + "/sub.git"); !s.ok()) return s;

    auto parent = SuperRepo::Create(*root_ + "/parent");
    if (!parent.ok()) return parent.status();
    auto parent_c = parent->Commit("parent 1",
                                   {{"README.md", "parent\n"},
                                    {"apps/a.yaml", "a\n"},
                                    {"apps-old/b.yaml", "b\n"},
                                    {"apps.yaml", "apps\n"},
                                    {"infra/c.yaml", "c\n"},
                                    {".gitmodules", Gitmodules({{"libs/sub", "../sub.git"}})}},
                                   {{"libs/sub", *sub_c}});
    if (!parent_c.ok()) return parent_c.status();
    return parent->Push(srv + "/parent.git");
  }

  GitFetchOptions Options(const std::string& url) {
    GitFetchOptions o;
    o.url = url;
    o.ref.branch = "main";
    o.timeout = absl::Seconds(20);
    return o;
  }
  absl::StatusOr<GitRevision> Fetch(const GitFetchOptions& o, absl::string_view cache,
                                    absl::string_view checkout) {
    return fetcher_->FetchAndCheckout(o, Dir(cache), Dir(checkout));
  }
  std::string Read(absl::string_view path) {
    auto content = testing::ReadFile(Dir(path));
    return content.ok() ? *content : "<missing>";
  }

  // A repository <name>.git with one commit: `files` plus gitlinks.
  absl::StatusOr<std::string> MakeSuperRepo(
      const std::string& name, const std::vector<std::pair<std::string, std::string>>& files,
      const std::vector<std::pair<std::string, std::string>>& gitlinks) {
    std::string bare = absl::StrCat(*srv_, "/", name, ".git");
    if (auto s = testing::InitBareRepo(bare); !s.ok()) return s;
    auto repo = SuperRepo::Create(absl::StrCat(scratch_, "/work-", name));
    if (!repo.ok()) return repo.status();
    auto c = repo->Commit("c", files, gitlinks);
    if (!c.ok()) return c.status();
    if (auto s = repo->Push(bare); !s.ok()) return s;
    return c;
  }

  static std::string* root_;
  static std::string* srv_;
  static std::string* sub_c1_;
  static testing::GitDaemon* daemon_;
};

std::string* FetcherCheckoutTest::root_ = nullptr;
std::string* FetcherCheckoutTest::srv_ = nullptr;
std::string* FetcherCheckoutTest::sub_c1_ = nullptr;
testing::GitDaemon* FetcherCheckoutTest::daemon_ = nullptr;

TEST_F(FetcherCheckoutTest, WithoutRecurseSubmodulesTheGitlinkIsAnEmptyDirectory) {
  auto fetched = Fetch(Options(daemon_->Url("parent.git")), "cache", "co");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(Read("co/README.md"), "parent\n");
  EXPECT_TRUE(IsEmptyDir(Dir("co/libs/sub")));
  EXPECT_FALSE(Exists(Dir("cache/modules")));
}

TEST_F(FetcherCheckoutTest, RecurseSubmodulesChecksOutNestedSubmodules) {
  GitFetchOptions o = Options(daemon_->Url("parent.git"));
  o.recurse_submodules = true;
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_TRUE(absl::StartsWith(fetched->revision, "main@sha1:")) << fetched->revision;
  EXPECT_EQ(fetched->message, "parent 1\n");  // the parent's, not a submodule's
  EXPECT_EQ(Read("co/README.md"), "parent\n");
  EXPECT_EQ(Read("co/libs/sub/sub.txt"), "sub 1\n");
  EXPECT_EQ(Read("co/libs/sub/nested/leaf.txt"), "leaf 1\n");
  EXPECT_EQ(Read("co/libs/sub/nested/dir/x.txt"), "x\n");
  EXPECT_EQ(Read("co/libs/sub/.gitmodules"), Gitmodules({{"nested", "../leaf.git"}}));
  EXPECT_FALSE(HasDotGit(Dir("co")));
  // Each submodule has its own cache under the parent's.
  std::error_code ec;
  int modules = 0;
  for (const auto& entry : std::filesystem::directory_iterator(Dir("cache/modules"), ec)) {
    (void)entry;
    ++modules;
  }
  EXPECT_EQ(modules, 2);

  // Again with the warm cache: nothing to download, same content.
  auto again = Fetch(o, "cache", "co2");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->revision, fetched->revision);
  EXPECT_EQ(again->received_objects, 0);
  EXPECT_EQ(Read("co2/libs/sub/nested/leaf.txt"), "leaf 1\n");
}

TEST_F(FetcherCheckoutTest, SubmoduleBumpInTheParentIsPickedUp) {
  // Own copies of sub.git and a parent, so other tests keep their history.
  std::string sub_bare = *srv_ + "/bump-sub.git";
  ASSERT_TRUE(testing::InitBareRepo(sub_bare).ok());
  auto sub = testing::GitWorkRepo::Create(Dir("work-bump-sub"));
  ASSERT_TRUE(sub.ok());
  auto s1 = sub->Commit("s1", {{"v.txt", "1\n"}});
  ASSERT_TRUE(s1.ok());
  ASSERT_TRUE(sub->PushAll(sub_bare).ok());
  std::string parent_bare = *srv_ + "/bump-parent.git";
  ASSERT_TRUE(testing::InitBareRepo(parent_bare).ok());
  auto parent = SuperRepo::Create(Dir("work-bump-parent"));
  ASSERT_TRUE(parent.ok());
  ASSERT_TRUE(parent
                  ->Commit("p1", {{".gitmodules", Gitmodules({{"mod", "./../bump-sub.git"}})}},
                           {{"mod", *s1}})
                  .ok());
  ASSERT_TRUE(parent->Push(parent_bare).ok());

  GitFetchOptions o = Options(daemon_->Url("bump-parent.git"));
  o.recurse_submodules = true;
  auto first = Fetch(o, "cache", "co1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Read("co1/mod/v.txt"), "1\n");

  auto s2 = sub->Commit("s2", {{"v.txt", "2\n"}});
  ASSERT_TRUE(s2.ok());
  ASSERT_TRUE(sub->PushAll(sub_bare).ok());
  auto p2 = parent->Commit("bump", {}, {{"mod", *s2}});
  ASSERT_TRUE(p2.ok());
  ASSERT_TRUE(parent->Push(parent_bare).ok());

  auto resolved = fetcher_->ResolveRemote(o);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->revision, "main@sha1:" + *p2);
  auto second = Fetch(o, "cache", "co2");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->revision, "main@sha1:" + *p2);
  EXPECT_EQ(Read("co2/mod/v.txt"), "2\n");
  EXPECT_GT(second->received_objects, 0);
}

TEST_F(FetcherCheckoutTest, SubmodulesOverHttpUseTheSameCredentials) {
  auto server = testing::GitHttpServer::Start(*srv_, {false, "flux", "sub-pass", ""});
  ASSERT_TRUE(server.ok()) << server.status();
  GitFetchOptions o = Options((*server)->Url("parent.git"));
  o.recurse_submodules = true;
  o.credentials.username = "flux";
  o.credentials.password = "sub-pass";
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(Read("co/libs/sub/nested/leaf.txt"), "leaf 1\n");

  o.credentials.password = "wrong-pass";
  auto wrong = Fetch(o, "cache-wrong", "co-wrong");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
}

TEST_F(FetcherCheckoutTest, UnreachableSubmoduleUrlNamesPathAndUrl) {
  int closed_port = testing::PickFreePort();
  std::string bad_url = absl::StrCat("git://127.0.0.1:", closed_port, "/gone.git");
  auto c = MakeSuperRepo("bad-url",
                         {{"x.txt", "x\n"}, {".gitmodules", Gitmodules({{"ext/gone", bad_url}})}},
                         {{"ext/gone", *sub_c1_}});
  ASSERT_TRUE(c.ok()) << c.status();
  GitFetchOptions o = Options(daemon_->Url("bad-url.git"));
  o.recurse_submodules = true;
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kUnavailable) << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), "submodule 'ext/gone'"))
      << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), bad_url)) << fetched.status();

  // Without recurseSubmodules the same repository is fine.
  o.recurse_submodules = false;
  auto plain = Fetch(o, "cache2", "co2");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(IsEmptyDir(Dir("co2/ext/gone")));
}

TEST_F(FetcherCheckoutTest, SubmoduleCommitMissingFromItsRepositoryIsNotFound) {
  const std::string missing = "0123456789abcdef0123456789abcdef01234567";
  auto c = MakeSuperRepo("missing-commit", {{".gitmodules", Gitmodules({{"m", "../leaf.git"}})}},
                         {{"m", missing}});
  ASSERT_TRUE(c.ok()) << c.status();
  GitFetchOptions o = Options(daemon_->Url("missing-commit.git"));
  o.recurse_submodules = true;
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kNotFound) << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), "submodule 'm'")) << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), missing)) << fetched.status();
}

TEST_F(FetcherCheckoutTest, LocalSubmoduleUrlOfARemoteRepositoryIsRefused) {
  auto c = MakeSuperRepo("local-url", {{".gitmodules", Gitmodules({{"m", *srv_ + "/leaf.git"}})}},
                         {{"m", *sub_c1_}});
  ASSERT_TRUE(c.ok()) << c.status();
  GitFetchOptions o = Options(daemon_->Url("local-url.git"));
  o.recurse_submodules = true;
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kInvalidArgument) << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(), "local submodule urls"))
      << fetched.status();
}

TEST_F(FetcherCheckoutTest, GitlinkWithoutGitmodulesEntryIsLeftEmpty) {
  auto c = MakeSuperRepo("no-gitmodules", {{"x.txt", "x\n"}}, {{"orphan", *sub_c1_}});
  ASSERT_TRUE(c.ok()) << c.status();
  GitFetchOptions o = Options(daemon_->Url("no-gitmodules.git"));
  o.recurse_submodules = true;
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_TRUE(IsEmptyDir(Dir("co/orphan")));
  EXPECT_EQ(Read("co/x.txt"), "x\n");
}

TEST_F(FetcherCheckoutTest, SparseCheckoutWritesOnlyTheListedDirectories) {
  GitFetchOptions o = Options(daemon_->Url("parent.git"));
  o.sparse_checkout = {"apps", "./infra/"};
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(Read("co/apps/a.yaml"), "a\n");
  EXPECT_EQ(Read("co/infra/c.yaml"), "c\n");
  // Whole path components: "apps" selects neither apps-old/ nor apps.yaml.
  EXPECT_FALSE(Exists(Dir("co/apps-old")));
  EXPECT_FALSE(Exists(Dir("co/apps.yaml")));
  EXPECT_FALSE(Exists(Dir("co/README.md")));
  EXPECT_FALSE(Exists(Dir("co/.gitmodules")));
  EXPECT_FALSE(Exists(Dir("co/libs")));

  // A file can be listed too; "./" alone means the whole tree.
  o.sparse_checkout = {"README.md"};
  auto file = Fetch(o, "cache", "co-file");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(Read("co-file/README.md"), "parent\n");
  EXPECT_FALSE(Exists(Dir("co-file/apps")));
  o.sparse_checkout = {"./"};
  auto all = Fetch(o, "cache", "co-all");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Read("co-all/apps.yaml"), "apps\n");
}

TEST_F(FetcherCheckoutTest, SparseCheckoutOfAMissingDirectoryIsNotFound) {
  GitFetchOptions o = Options(daemon_->Url("parent.git"));
  o.sparse_checkout = {"apps", "./nope/"};
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kNotFound) << fetched.status();
  EXPECT_TRUE(absl::StrContains(fetched.status().message(),
                                "sparse checkout dir './nope/' does not exist in repository"))
      << fetched.status();

  o.sparse_checkout = {"../apps"};
  auto escape = Fetch(o, "cache", "co2");
  ASSERT_FALSE(escape.ok());
  EXPECT_EQ(escape.status().code(), absl::StatusCode::kInvalidArgument) << escape.status();
}

TEST_F(FetcherCheckoutTest, SparseCheckoutReachesIntoSubmodules) {
  GitFetchOptions o = Options(daemon_->Url("parent.git"));
  o.sparse_checkout = {"libs/sub/nested/dir"};
  o.recurse_submodules = true;
  auto fetched = Fetch(o, "cache", "co");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(Read("co/libs/sub/nested/dir/x.txt"), "x\n");
  EXPECT_FALSE(Exists(Dir("co/libs/sub/sub.txt")));
  EXPECT_FALSE(Exists(Dir("co/libs/sub/nested/leaf.txt")));
  EXPECT_FALSE(Exists(Dir("co/apps")));

  o.sparse_checkout = {"libs/sub/nested/none"};
  auto missing = Fetch(o, "cache", "co2");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "'libs/sub/nested/none'"))
      << missing.status();

  o.sparse_checkout = {"libs/sub/sub.txt"};
  o.recurse_submodules = false;
  auto off = Fetch(o, "cache", "co3");
  ASSERT_FALSE(off.ok());
  EXPECT_EQ(off.status().code(), absl::StatusCode::kNotFound) << off.status();
  EXPECT_TRUE(absl::StrContains(off.status().message(), "inside submodule 'libs/sub'"))
      << off.status();
}

}  // namespace
}  // namespace gitops::source
