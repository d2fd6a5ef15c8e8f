#include "source-controller/artifact/storage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using gitops::testing::MakeTempDir;
using gitops::testing::ReadFile;
using gitops::testing::RemoveTree;
using gitops::testing::WriteFile;

const SourceKey kKey{"GitRepository", "flux-system", "podinfo"};

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

class ArtifactStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("storage") + "/store";
    clock_ = absl::FromUnixSeconds(1700000000);
    auto s = ArtifactStorage::Create(root_, Options());
    ASSERT_TRUE(s.ok()) << s.status();
    storage_ = std::move(*s);
  }
  void TearDown() override {
    storage_.reset();
    RemoveTree(root_.substr(0, root_.size() - 6));
  }
  StorageOptions Options() {
    StorageOptions o;
    o.now = [this] { return clock_; };
    return o;
  }
  // Stores `content` as a new artifact at the current fake time.
  StoredArtifact Store(const std::string& content, const SourceKey& key = kKey) {
    auto temp = storage_->NewTempPath(key);
    EXPECT_TRUE(temp.ok()) << temp.status();
    EXPECT_TRUE(WriteFile(*temp, content).ok());
    auto stored = storage_->Commit(key, *temp, common::Sha256Digest(content));
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? *stored : StoredArtifact{};
  }
  std::vector<std::string> Digests() {
    auto list = storage_->List(kKey);
    EXPECT_TRUE(list.ok()) << list.status();
    std::vector<std::string> out;
    for (const StoredArtifact& a : *list) out.push_back(a.digest);
    return out;
  }

  std::string root_;
  absl::Time clock_;
  std::unique_ptr<ArtifactStorage> storage_;
};

TEST_F(ArtifactStorageTest, CommitUsesFluxLayoutAndRemovesTheTempFile) {
  auto temp = storage_->NewTempPath(kKey);
  ASSERT_TRUE(temp.ok()) << temp.status();
  EXPECT_TRUE(absl::StartsWith(*temp, root_ + "/gitrepository/flux-system/podinfo/"));
  ASSERT_TRUE(WriteFile(*temp, "tarball bytes").ok());
  const std::string digest = common::Sha256Digest("tarball bytes");
  auto stored = storage_->Commit(kKey, *temp, digest);
  ASSERT_TRUE(stored.ok()) << stored.status();

  const std::string hex = digest.substr(7);
  EXPECT_EQ(stored->path, "gitrepository/flux-system/podinfo/" + hex + ".tar.gz");
  EXPECT_EQ(stored->digest, digest);
  EXPECT_EQ(stored->size, 13);
  EXPECT_EQ(stored->last_update, clock_);
  EXPECT_FALSE(Exists(*temp));
  auto content = ReadFile(root_ + "/" + stored->path);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "tarball bytes");
}

TEST_F(ArtifactStorageTest, TempFilesAreNotListedAndAreCleanedAtCreate) {
  Store("one");
  auto temp = storage_->NewTempPath(kKey);
  ASSERT_TRUE(temp.ok());
  ASSERT_TRUE(WriteFile(*temp, "half written").ok());
  const std::string base = temp->substr(temp->find_last_of('/') + 1);
  EXPECT_TRUE(absl::StartsWith(base, ".")) << base;
  EXPECT_FALSE(absl::EndsWith(base, ".tar.gz")) << base;
  EXPECT_EQ(Digests().size(), 1u);

  // A restart after a crash removes the leftover, keeps the artifact.
  auto again = ArtifactStorage::Create(root_, Options());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(Exists(*temp));
  EXPECT_EQ(Digests(), std::vector<std::string>{common::Sha256Digest("one")});
}

TEST_F(ArtifactStorageTest, NewTempPathsAreUnique) {
  auto a = storage_->NewTempPath(kKey);
  auto b = storage_->NewTempPath(kKey);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(Exists(*a));
}

TEST_F(ArtifactStorageTest, CommitOfAnExistingDigestKeepsTheFileAndRefreshesIt) {
  StoredArtifact first = Store("same");
  struct stat before;
  ASSERT_EQ(stat((root_ + "/" + first.path).c_str(), &before), 0);
  clock_ += absl::Minutes(5);
  StoredArtifact second = Store("same");
  struct stat after;
  ASSERT_EQ(stat((root_ + "/" + second.path).c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(second.last_update, clock_);
  EXPECT_EQ(Digests().size(), 1u);
}

TEST_F(ArtifactStorageTest, ListIsNewestFirst) {
  Store("v1");
  clock_ += absl::Seconds(1);
  Store("v2");
  clock_ += absl::Seconds(1);
  Store("v3");
  EXPECT_EQ(Digests(),
            (std::vector<std::string>{common::Sha256Digest("v3"), common::Sha256Digest("v2"),
                                      common::Sha256Digest("v1")}));
  auto other = storage_->List(SourceKey{"GitRepository", "flux-system", "other"});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
}

TEST_F(ArtifactStorageTest, RejectsBadKeysDigestsAndForeignTempFiles) {
  struct Case {
    const char* name;
    SourceKey key;
  } keys[] = {
      {"empty name", {"GitRepository", "ns", ""}},
      {"dot dot", {"GitRepository", "..", "x"}},
      {"slash", {"GitRepository", "ns", "a/b"}},
  };
  for (const Case& c : keys) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(storage_->NewTempPath(c.key).status().code(), absl::StatusCode::kInvalidArgument);
  }
  auto temp = storage_->NewTempPath(kKey);
  ASSERT_TRUE(temp.ok());
  EXPECT_EQ(storage_->Commit(kKey, *temp, "sha256:xyz").status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string foreign = root_ + "/elsewhere.partial";
  ASSERT_TRUE(WriteFile(foreign, "x").ok());
  EXPECT_EQ(storage_->Commit(kKey, foreign, common::Sha256Digest("x")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ArtifactStorageTest, OpenReadsAtOffsetsAndMissingIsNotFound) {
  StoredArtifact a = Store("0123456789");
  auto reader = storage_->Open(kKey, a.digest);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->artifact().size, 10);
  char buf[8];
  auto n = (*reader)->ReadAt(6, buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "6789");
  n = (*reader)->ReadAt(10, buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_EQ((*reader)->ReadAt(-1, buf, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(storage_->Open(kKey, common::Sha256Digest("absent")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ArtifactStorageTest, GarbageCollectFollowsRecordsAndTtl) {
  struct Case {
    const char* name;
    int keep_records;
    absl::Duration ttl;
    absl::Duration since_last;   // time from the newest artifact to GC
    int current;                 // index into v0..v4 (oldest..newest)
    std::vector<int> survivors;  // newest first
  } cases[] = {
      {"records keep the newest, current counts", 2, absl::Hours(1), absl::Seconds(0), 4, {4, 3}},
      {"old current is kept besides the newest", 2, absl::Hours(1), absl::Seconds(0), 0, {4, 0}},
      {"ttl removes expired ones below the record limit",
       10,
       absl::Seconds(150),
       absl::Seconds(0),
       4,
       {4, 3, 2}},
      {"everything expired but current", 10, absl::Seconds(30), absl::Hours(1), 3, {3}},
      {"zero records keeps only current", 0, absl::Hours(1), absl::Seconds(0), 2, {2}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(storage_->RemoveAll(kKey).ok());
    const absl::Time start = clock_;
    std::vector<std::string> d;
    for (int i = 0; i < 5; ++i) {
      clock_ = start + absl::Minutes(i);  // v0 is 4 minutes older than v4
      d.push_back(Store(absl::StrCat("v", i, c.name)).digest);
    }
    const absl::Time now = clock_ + c.since_last;
    auto removed = storage_->GarbageCollect(kKey, d[c.current], c.keep_records, c.ttl, now);
    ASSERT_TRUE(removed.ok()) << removed.status();
    std::vector<std::string> want;
    for (int i : c.survivors) want.push_back(d[i]);
    EXPECT_EQ(Digests(), want);
    EXPECT_EQ(removed->size(), 5 - c.survivors.size());
    for (const std::string& p : *removed) {
      EXPECT_TRUE(absl::StartsWith(p, "gitrepository/flux-system/podinfo/")) << p;
      EXPECT_FALSE(Exists(root_ + "/" + p));
    }
    clock_ = start + absl::Hours(1);
  }
}

TEST_F(ArtifactStorageTest, GarbageCollectNeverRemovesAPinnedArtifact) {
  StoredArtifact old = Store("old");
  clock_ += absl::Minutes(10);
  StoredArtifact current = Store("current");
  {
    auto reader = storage_->Open(kKey, old.digest);
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ(storage_->PinCount(kKey, old.digest), 1);
    auto removed = storage_->GarbageCollect(kKey, current.digest, 1, absl::Seconds(1),
                                            clock_ + absl::Hours(1));
    ASSERT_TRUE(removed.ok());
    EXPECT_TRUE(removed->empty());
    EXPECT_TRUE(Exists(root_ + "/" + old.path));
  }
  EXPECT_EQ(storage_->PinCount(kKey, old.digest), 0);
  auto removed =
      storage_->GarbageCollect(kKey, current.digest, 1, absl::Seconds(1), clock_ + absl::Hours(1));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, std::vector<std::string>{old.path});
}

TEST_F(ArtifactStorageTest, RemoveAllDeletesTheSourceButOpenReadersStillRead) {
  StoredArtifact a = Store("payload");
  Store("other", SourceKey{"GitRepository", "flux-system", "other"});
  auto reader = storage_->Open(kKey, a.digest);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(storage_->RemoveAll(kKey).ok());
  EXPECT_FALSE(Exists(root_ + "/gitrepository/flux-system/podinfo"));
  EXPECT_TRUE(Exists(root_ + "/gitrepository/flux-system/other"));
  char buf[16];
  auto n = (*reader)->ReadAt(0, buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "payload");
  EXPECT_TRUE(storage_->RemoveAll(kKey).ok()) << "removing twice is fine";
}

TEST_F(ArtifactStorageTest, ConcurrentCommitsOpensAndGcStayConsistent) {
  StoredArtifact base = Store("base");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string content = absl::StrCat("t", t, "-", i);
        auto temp = storage_->NewTempPath(kKey);
        if (!temp.ok() || !WriteFile(*temp, content).ok()) {
          ++failures;
          continue;
        }
        auto stored = storage_->Commit(kKey, *temp, common::Sha256Digest(content));
        if (!stored.ok()) ++failures;
        auto reader = storage_->Open(kKey, base.digest);
        if (!reader.ok()) {
          ++failures;
          continue;
        }
        char buf[8];
        auto n = (*reader)->ReadAt(0, buf, sizeof(buf));
        if (!n.ok() || std::string(buf, *n) != "base") ++failures;
        if (!storage_->GarbageCollect(kKey, base.digest, 3, absl::Hours(1), clock_).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto removed = storage_->GarbageCollect(kKey, base.digest, 3, absl::Hours(1), clock_);
  ASSERT_TRUE(removed.ok());
  EXPECT_LE(Digests().size(), 3u);
  EXPECT_TRUE(Exists(root_ + "/" + base.path));
}

// Issue 17: a symlink where storage expects a directory (at the kind,
// namespace or name level) is refused wherever storage writes, lists,
// collects or removes, and what it points at stays untouched.
TEST_F(ArtifactStorageTest, SymlinkedLevelsAreRefusedNeverFollowed) {
  namespace fs = std::filesystem;
  const std::string base = root_.substr(0, root_.size() - 6);
  const std::string outside = base + "/outside";
  const std::string victim_artifact = outside + "/" + std::string(64, 'a') + ".tar.gz";
  ASSERT_TRUE(WriteFile(victim_artifact, "victim").ok());
  ASSERT_TRUE(WriteFile(outside + "/sub/keep.txt", "keep").ok());
  auto untouched = [&] {
    EXPECT_TRUE(Exists(victim_artifact));
    EXPECT_TRUE(Exists(outside + "/sub/keep.txt"));
    for (const auto& e : fs::directory_iterator(outside)) {
      EXPECT_FALSE(absl::StrContains(e.path().filename().string(), ".partial")) << e.path();
    }
  };
  struct Case {
    const char* name;
    std::string link;  // relative to root_
  } cases[] = {
      {"kind", "gitrepository"},
      {"namespace", "gitrepository/flux-system"},
      {"name", "gitrepository/flux-system/podinfo"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RemoveTree(root_ + "/gitrepository");
    fs::create_directories(fs::path(root_ + "/" + c.link).parent_path());
    fs::create_directory_symlink(outside, root_ + "/" + c.link);

    auto temp = storage_->NewTempPath(kKey);
    ASSERT_FALSE(temp.ok());
    EXPECT_EQ(temp.status().code(), absl::StatusCode::kFailedPrecondition) << temp.status();
    EXPECT_TRUE(absl::StrContains(temp.status().message(), "'" + c.link + "' is a symbolic link"))
        << temp.status();
    EXPECT_FALSE(absl::StrContains(temp.status().message(), base)) << temp.status();
    EXPECT_EQ(storage_->List(kKey).status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(storage_->Open(kKey, "sha256:" + std::string(64, 'a')).ok());
    EXPECT_FALSE(storage_->GarbageCollect(kKey, "", 0, absl::ZeroDuration(), clock_).ok());
    absl::Status removed = storage_->RemoveAll(kKey);
    if (std::string(c.name) == "name") {
      // The link itself is the source directory: it goes, not its target.
      EXPECT_TRUE(removed.ok()) << removed;
      EXPECT_FALSE(Exists(root_ + "/" + c.link));
    } else {
      EXPECT_EQ(removed.code(), absl::StatusCode::kFailedPrecondition) << removed;
    }
    untouched();
  }
}

TEST_F(ArtifactStorageTest, ListSourcesSkipsSymlinksAndFiles) {
  namespace fs = std::filesystem;
  const std::string outside = root_.substr(0, root_.size() - 6) + "/outside";
  ASSERT_TRUE(WriteFile(outside + "/victim/keep.txt", "keep").ok());
  Store("one");
  Store("two", SourceKey{"GitRepository", "apps", "web"});
  fs::create_directory_symlink(outside, root_ + "/gitrepository/x");
  fs::create_directory_symlink(outside, root_ + "/gitrepository/apps/linked");
  ASSERT_TRUE(WriteFile(root_ + "/gitrepository/apps/file", "f").ok());

  auto listing = storage_->ListSources("GitRepository");
  ASSERT_TRUE(listing.ok()) << listing.status();
  std::vector<std::string> keys;
  for (const SourceKey& k : listing->sources) keys.push_back(k.namespace_name + "/" + k.name);
  EXPECT_EQ(keys, (std::vector<std::string>{"apps/web", "flux-system/podinfo"}));
  std::sort(listing->skipped.begin(), listing->skipped.end());
  EXPECT_EQ(listing->skipped,
            (std::vector<std::string>{"gitrepository/apps/linked", "gitrepository/x"}));
  EXPECT_TRUE(Exists(outside + "/victim/keep.txt"));
  EXPECT_TRUE(storage_->ListSources("OCIRepository")->sources.empty());
}

}  // namespace
}  // namespace gitops::source
