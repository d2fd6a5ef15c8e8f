// Resource bounds of the libgit2 fetcher's checkout (issue 17, item 5):
// GitFetchOptions::max_checkout_bytes measured from the object headers
// before anything is written and enforced while writing, the deadline
// honoured while checking out, and blobs written in bounded chunks (loose
// objects streamed). Repositories are local bare repositories (file://).
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "source-controller/git/libgit2_fetcher.h"
#include "test/source-controller/git/test_repo.h"
#include "test/support/git_bomb.h"
#include "test/support/git_servers.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

bool IsEmptyDir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) && std::filesystem::is_empty(path, ec);
}

class FetcherBoundsTest : public FetcherTest {
 protected:
  GitFetchOptions Options(const std::string& bare) {
    GitFetchOptions o;
    o.url = "file://" + bare;
    o.ref.branch = "main";
    return o;
  }
};

// A 4 KB repository whose tree names an 8 MiB blob 100 times (800 MiB):
// refused before the first file is written, with the revision attached.
TEST_F(FetcherBoundsTest, TreeOverTheLimitIsRefusedBeforeAnythingIsWritten) {
  const std::string bare = Dir("srv/bomb.git");
  auto bomb = testing::WriteGitBomb(bare, "main", 8 << 20, 10, 2);
  ASSERT_TRUE(bomb.ok()) << bomb.status();
  GitFetchOptions o = Options(bare);
  o.max_checkout_bytes = 4 << 20;
  auto rev = fetcher_->FetchAndCheckout(o, Dir("cache"), Dir("out"));
  ASSERT_FALSE(rev.ok());
  EXPECT_EQ(rev.status().code(), absl::StatusCode::kResourceExhausted) << rev.status();
  EXPECT_TRUE(absl::StrContains(rev.status().message(), "more than 4194304 bytes")) << rev.status();
  EXPECT_TRUE(absl::StrContains(rev.status().message(), "checkout stopped at 'd0/f0'"))
      << rev.status();
  EXPECT_EQ(RevisionOfFailure(rev.status()), "main@sha1:" + *bomb);
  EXPECT_TRUE(IsEmptyDir(Dir("out"))) << "nothing written";
  // A local remote is measured in the source repository, before libgit2's
  // local transport packs the objects in memory: nothing was fetched.
  EXPECT_TRUE(IsEmptyDir(Dir("cache/objects/pack")));
}

// The limit counts file contents plus 512 bytes per entry (files and
// directories), as the uncompressed artifact does; one byte less refuses.
TEST_F(FetcherBoundsTest, LimitCountsContentsAndOneTarHeaderPerEntry) {
  auto repo = testing::GitWorkRepo::Create(Dir("work"), "main");
  ASSERT_TRUE(repo.ok()) << repo.status();
  ASSERT_TRUE(
      repo->Commit("c", {{"a.txt", std::string(100, 'a')}, {"d/b.txt", std::string(200, 'b')}})
          .ok());
  ASSERT_TRUE(testing::InitBareRepo(Dir("srv/r.git")).ok());
  ASSERT_TRUE(repo->PushAll(Dir("srv/r.git")).ok());
  const int64_t exact = 100 + 512 + 512 + 200 + 512;  // a.txt, d/, d/b.txt

  GitFetchOptions o = Options(Dir("srv/r.git"));
  o.max_checkout_bytes = exact;
  auto fits = fetcher_->FetchAndCheckout(o, Dir("cache1"), Dir("out1"));
  ASSERT_TRUE(fits.ok()) << fits.status();
  auto content = testing::ReadFile(Dir("out1/d/b.txt"));
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, std::string(200, 'b'));

  // Measured in the cache this time (the objects are there already).
  o.max_checkout_bytes = exact - 1;
  auto over = fetcher_->FetchAndCheckout(o, Dir("cache1"), Dir("out2"));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_TRUE(absl::StrContains(over.status().message(), "checkout stopped at 'd/b.txt'"))
      << over.status();
  EXPECT_TRUE(IsEmptyDir(Dir("out2")));
  EXPECT_EQ(RevisionOfFailure(over.status()), "main@sha1:" + fits->commit);

  // The same tree from a fresh cache: refused in the source repository.
  auto local = fetcher_->FetchAndCheckout(o, Dir("cache2"), Dir("out3"));
  ASSERT_FALSE(local.ok());
  EXPECT_EQ(local.status().code(), absl::StatusCode::kResourceExhausted) << local.status();
  EXPECT_EQ(RevisionOfFailure(local.status()), "main@sha1:" + fits->commit);
}

// spec.timeout covers the checkout, not only the network: a pinned commit
// already in the cache (no network at all) still stops at the deadline.
TEST_F(FetcherBoundsTest, CheckoutHonoursTheDeadline) {
  auto repo = TestRepo::Create("bounds-deadline");
  ASSERT_TRUE(repo.ok()) << repo.status();
  GitFetchOptions o = Options(repo->bare);
  ASSERT_TRUE(fetcher_->FetchAndCheckout(o, Dir("cache"), Dir("out1")).ok());
  o.ref = GitReference{};
  o.ref.commit = repo->c4;
  o.timeout = absl::Nanoseconds(1);
  auto rev = fetcher_->FetchAndCheckout(o, Dir("cache"), Dir("out2"));
  testing::RemoveTree(repo->root);
  ASSERT_FALSE(rev.ok());
  EXPECT_EQ(rev.status().code(), absl::StatusCode::kDeadlineExceeded) << rev.status();
  EXPECT_TRUE(absl::StrContains(rev.status().message(), "while checking out")) << rev.status();
}

// Blobs larger than one write chunk (1 MiB) arrive whole, from packed
// objects (fetched) and from loose ones (git's fetch unpacks small
// fetches; the pinned commit is then checked out without the network).
TEST_F(FetcherBoundsTest, LargeBlobsAreWrittenWholeFromPackedAndLooseObjects) {
  const std::string bare = Dir("srv/big.git");
  ASSERT_TRUE(testing::InitBareRepo(bare).ok());
  std::string big;  // what `seq 1 400000` prints: 2.7 MB
  for (int i = 1; i <= 400000; ++i) absl::StrAppend(&big, i, "\n");
  auto commit = testing::RunCommand(
      {"bash", "-c",
       "set -euo pipefail; b=$(seq 1 400000 | git hash-object -w --stdin); t=$(printf "
       "'100644 blob %s\\tbig.txt\\n' \"$b\" | git mktree); c=$(git -c user.name=t -c "
       "user.email=t@e commit-tree \"$t\" -m big); git update-ref refs/heads/main \"$c\"; "
       "echo -n \"$c\""},
      absl::Seconds(60), bare);
  ASSERT_TRUE(commit.ok()) << commit.status();

  GitFetchOptions o = Options(bare);
  o.max_checkout_bytes = 8 << 20;
  ASSERT_TRUE(fetcher_->FetchAndCheckout(o, Dir("packed-cache"), Dir("packed")).ok());
  auto packed = testing::ReadFile(Dir("packed/big.txt"));
  ASSERT_TRUE(packed.ok());
  EXPECT_TRUE(*packed == big) << packed->size() << " bytes, want " << big.size();

  ASSERT_TRUE(testing::InitBareRepo(Dir("loose-cache")).ok());
  ASSERT_TRUE(
      testing::Git(Dir("loose-cache"), {"fetch", "--quiet", bare, "main:refs/heads/main"}).ok());
  auto loose_count = testing::Git(Dir("loose-cache"), {"count-objects"});
  ASSERT_TRUE(loose_count.ok());
  ASSERT_TRUE(absl::StartsWith(*loose_count, "3 objects")) << *loose_count;
  o.ref = GitReference{};
  o.ref.commit = *commit;
  auto rev = fetcher_->FetchAndCheckout(o, Dir("loose-cache"), Dir("loose"));
  ASSERT_TRUE(rev.ok()) << rev.status();
  auto loose = testing::ReadFile(Dir("loose/big.txt"));
  ASSERT_TRUE(loose.ok());
  EXPECT_TRUE(*loose == big) << loose->size() << " bytes, want " << big.size();
}

// A symlink whose target is longer than PATH_MAX is refused without
// reading it whole.
TEST_F(FetcherBoundsTest, OversizedSymlinkTargetIsRefused) {
  const std::string bare = Dir("srv/link.git");
  ASSERT_TRUE(testing::InitBareRepo(bare).ok());
  auto out = testing::RunCommand(
      {"bash", "-c",
       "set -euo pipefail; b=$(head -c 10000 /dev/zero | tr '\\0' a | git hash-object -w "
       "--stdin); t=$(printf '120000 blob %s\\tlink\\n' \"$b\" | git mktree); c=$(git -c "
       "user.name=t -c user.email=t@e commit-tree \"$t\" -m l); git update-ref "
       "refs/heads/main \"$c\""},
      absl::Seconds(60), bare);
  ASSERT_TRUE(out.ok()) << out.status();
  auto rev = fetcher_->FetchAndCheckout(Options(bare), Dir("cache"), Dir("out"));
  ASSERT_FALSE(rev.ok());
  EXPECT_EQ(rev.status().code(), absl::StatusCode::kInvalidArgument) << rev.status();
  EXPECT_TRUE(absl::StrContains(rev.status().message(), "refusing symlink 'link'")) << rev.status();
}

}  // namespace
}  // namespace gitops::source
