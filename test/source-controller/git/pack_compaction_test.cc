// The cache's pack count stays bounded over many fetches, and compaction
// keeps every object the cache's refs reach (checked with the real git).
#include "source-controller/git/pack_compaction.h"

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/git/test_repo.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

class PackCompactionTest : public FetcherTest {
 protected:
  void SetUp() override {
    FetcherTest::SetUp();
    auto repo = TestRepo::Create("pack-compaction");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = *repo;
    Libgit2FetcherOptions options;
    options.max_packs_per_cache = kMaxPacks;
    fetcher_ = NewLibgit2Fetcher(options);
  }
  void TearDown() override {
    testing::RemoveTree(repo_.root);
    FetcherTest::TearDown();
  }
  GitFetchOptions Options() const {
    GitFetchOptions o;
    o.url = "file://" + repo_.bare;
    return o;
  }

  static constexpr int kMaxPacks = 4;
  TestRepo repo_;
};

TEST_F(PackCompactionTest, ManyFetchesKeepThePackCountBoundedAndEveryReachableObject) {
  const std::string cache = Dir("cache");
  GitFetchOptions tag = Options();
  tag.ref.tag = "v1.1.0";  // annotated: its tag object must survive compaction
  ASSERT_TRUE(fetcher_->FetchAndCheckout(tag, cache, Dir("co-tag")).ok());
  GitFetchOptions dev = Options();
  dev.ref.branch = "dev";
  ASSERT_TRUE(fetcher_->FetchAndCheckout(dev, cache, Dir("co-dev")).ok());

  GitFetchOptions main = Options();
  main.ref.branch = "main";
  int max_seen = 0;
  std::string first_new;
  for (int i = 0; i < 3 * kMaxPacks; ++i) {
    auto sha = repo_.PushNewCommit("deploy/app.yaml", absl::StrCat("kind: V", i, "\n"));
    ASSERT_TRUE(sha.ok()) << sha.status();
    if (first_new.empty()) first_new = *sha;
    auto fetched = fetcher_->FetchAndCheckout(main, cache, Dir(absl::StrCat("co-", i)));
    ASSERT_TRUE(fetched.ok()) << fetched.status();
    EXPECT_EQ(fetched->commit, *sha);
    max_seen = std::max(max_seen, CountPacks(cache));
  }
  EXPECT_LE(max_seen, kMaxPacks);
  EXPECT_GE(max_seen, 2) << "fetches add packs: the bound was reached, not avoided";

  // The real git agrees that nothing reachable is missing.
  auto fsck = testing::Git(cache, {"fsck", "--connectivity-only", "--no-dangling"});
  EXPECT_TRUE(fsck.ok()) << fsck.status();
  auto tag_type = testing::Git(cache, {"cat-file", "-t", repo_.tag_object_v1_1_0});
  ASSERT_TRUE(tag_type.ok()) << tag_type.status();
  EXPECT_EQ(*tag_type, "tag");

  // Commits of every branch fetched, old and new, are in the compacted
  // cache.
  for (const std::string& commit : {repo_.c1, repo_.c3, first_new}) {
    EXPECT_TRUE(testing::Git(cache, {"cat-file", "-e", commit + "^{tree}"}).ok()) << commit;
  }
}

TEST_F(PackCompactionTest, BelowTheBoundNothingIsRewritten) {
  const std::string cache = Dir("cache");
  GitFetchOptions main = Options();
  main.ref.branch = "main";
  ASSERT_TRUE(fetcher_->FetchAndCheckout(main, cache, Dir("co")).ok());
  ASSERT_EQ(CountPacks(cache), 1);
  const auto pack_dir = std::filesystem::path(cache) / "objects" / "pack";
  std::string before;
  for (const auto& e : std::filesystem::directory_iterator(pack_dir)) {
    before += e.path().filename().string() + " ";
  }
  auto sha = repo_.PushNewCommit("x.yaml", "kind: X\n");
  ASSERT_TRUE(sha.ok());
  ASSERT_TRUE(fetcher_->FetchAndCheckout(main, cache, Dir("co2")).ok());
  EXPECT_EQ(CountPacks(cache), 2);
  for (const auto& e : std::filesystem::directory_iterator(pack_dir)) {
    if (before.find(e.path().filename().string()) == std::string::npos) continue;
    before.erase(before.find(e.path().filename().string()), e.path().filename().string().size());
  }
  EXPECT_EQ(before.find_first_not_of(' '), std::string::npos) << "an old pack went: " << before;
}

}  // namespace
}  // namespace gitops::source
