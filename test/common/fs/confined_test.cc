// The confined file-system helpers against a real temp tree: planted
// symbolic links at every level never redirect a removal, a directory walk
// or a read, and what they point at (a directory this test owns) stays
// untouched.
#include "common/fs/confined.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::common {
namespace {

namespace fs = std::filesystem;

class ConfinedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = testing::MakeTempDir("confined-test");
    root_ = tmp_ + "/root";
    outside_ = tmp_ + "/outside";
    fs::create_directories(root_);
    // The victim: a directory outside the root with a file and a sub-tree.
    ASSERT_TRUE(testing::WriteFile(outside_ + "/keep.txt", "keep\n").ok());
    ASSERT_TRUE(testing::WriteFile(outside_ + "/sub/deep.txt", "deep\n").ok());
  }
  void TearDown() override { testing::RemoveTree(tmp_); }

  void ExpectOutsideUntouched() {
    EXPECT_TRUE(fs::is_regular_file(outside_ + "/keep.txt"));
    EXPECT_TRUE(fs::is_regular_file(outside_ + "/sub/deep.txt"));
  }
  UniqueFd OpenRoot() { return UniqueFd(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

  std::string tmp_, root_, outside_;
};

TEST(SplitCleanTest, DropsDotsAndClampsParentsAtTheRoot) {
  struct Case {
    std::string in;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"", {}},
      {".", {}},
      {"/", {}},
      {"a/b", {"a", "b"}},
      {"./a//b/", {"a", "b"}},
      {"/abs/path", {"abs", "path"}},
      {"a/../b", {"b"}},
      {"../../etc/passwd", {"etc", "passwd"}},
      {"a/b/../../..", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(SplitClean(c.in), c.want);
  }
}

TEST_F(ConfinedTest, OpenDirBeneathCreatesDirectoriesAndRefusesSymlinksAtEveryLevel) {
  auto made = OpenDirBeneath(root_, {"a", "b", "c"}, /*create=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(fs::is_directory(root_ + "/a/b/c"));

  fs::create_directory_symlink(outside_, root_ + "/a/link");
  for (const std::vector<std::string>& parts :
       std::vector<std::vector<std::string>>{{"a", "link"}, {"a", "link", "sub"}}) {
    SCOPED_TRACE(parts.size());
    for (bool create : {false, true}) {
      auto dir = OpenDirBeneath(root_, parts, create);
      ASSERT_FALSE(dir.ok());
      EXPECT_EQ(dir.status().code(), absl::StatusCode::kFailedPrecondition) << dir.status();
      EXPECT_TRUE(absl::StrContains(dir.status().message(), "'a/link' is a symbolic link"))
          << dir.status();
      EXPECT_FALSE(absl::StrContains(dir.status().message(), tmp_)) << dir.status();
    }
  }
  EXPECT_FALSE(fs::exists(outside_ + "/sub/sub"));
  ASSERT_TRUE(testing::WriteFile(root_ + "/file", "x").ok());
  auto file = OpenDirBeneath(root_, {"file", "x"}, true);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kFailedPrecondition) << file.status();
  EXPECT_TRUE(absl::StrContains(file.status().message(), "'file' is a regular file"));
  EXPECT_EQ(OpenDirBeneath(root_, {"missing"}, false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(OpenDirBeneath(root_, {".."}, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  ExpectOutsideUntouched();
}

TEST_F(ConfinedTest, FirstSymlinkNamesTheComponentThatIsALink) {
  fs::create_directories(root_ + "/a/b");
  fs::create_directory_symlink(outside_, root_ + "/a/st");
  UniqueFd root = OpenRoot();
  auto none = FirstSymlink(root.get(), {"a", "b", "new", "deeper"});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  auto found = FirstSymlink(root.get(), {"a", "st", "planted"});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->value_or(""), "a/st");
  auto last = FirstSymlink(root.get(), {"a", "st"});
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->value_or(""), "a/st");
}

// The start-up clean-up bug: a symlink where a directory was expected, then
// a recursive removal "beneath" it deleted the victim's sub-directories.
TEST_F(ConfinedTest, RemoveBeneathNeverFollowsASymlinkAtAnyLevel) {
  fs::create_directories(root_ + "/kind");
  fs::create_directory_symlink(outside_, root_ + "/kind/ns");
  // A link among the parents: refused, nothing removed.
  absl::Status s = RemoveBeneath(root_, {"kind", "ns", "sub"});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  ExpectOutsideUntouched();
  // The link as the last component: the link goes, its target stays.
  ASSERT_TRUE(RemoveBeneath(root_, {"kind", "ns"}).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ + "/kind/ns")));
  ExpectOutsideUntouched();
  // Links inside the removed tree: removed as links.
  fs::create_directories(root_ + "/kind/ns2/name/d");
  fs::create_directory_symlink(outside_, root_ + "/kind/ns2/name/d/to-dir");
  fs::create_symlink(outside_ + "/keep.txt", root_ + "/kind/ns2/name/to-file");
  ASSERT_TRUE(testing::WriteFile(root_ + "/kind/ns2/name/d/f.txt", "f").ok());
  ASSERT_TRUE(RemoveBeneath(root_, {"kind", "ns2", "name"}).ok());
  EXPECT_FALSE(fs::exists(root_ + "/kind/ns2/name"));
  EXPECT_TRUE(fs::is_directory(root_ + "/kind/ns2"));
  ExpectOutsideUntouched();
  // Absent: fine.
  EXPECT_TRUE(RemoveBeneath(root_, {"kind", "nothing", "here"}).ok());
  EXPECT_EQ(RemoveBeneath(root_, {}).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConfinedTest, RemoveTreeRemovesADeepTreeWithFewDescriptors) {
  // 400 levels under a descriptor limit of 64: a removal that held one
  // descriptor per level would fail half-way.
  {
    UniqueFd dir = OpenRoot();
    for (int i = 0; i < 400; ++i) {
      ASSERT_EQ(mkdirat(dir.get(), "d", 0755), 0);
      if (i % 50 == 0) {
        UniqueFd f(openat(dir.get(), "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        ASSERT_TRUE(f.valid());
        ASSERT_EQ(symlinkat(outside_.c_str(), dir.get(), "l"), 0);
      }
      dir = UniqueFd(openat(dir.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      ASSERT_TRUE(dir.valid());
    }
  }
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit low = old;
  low.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  absl::Status s = RemoveTree(root_);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_FALSE(fs::exists(root_));
  ExpectOutsideUntouched();
}

TEST_F(ConfinedTest, ReadRegularFileAtReadsOnlyBoundedRegularFiles) {
  UniqueFd root = OpenRoot();
  ASSERT_TRUE(testing::WriteFile(root_ + "/ok", "patterns\n").ok());
  auto ok = ReadRegularFileAt(root.get(), "ok", 1024, "ok");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "patterns\n");

  // A symlink to a secret the test owns (the /etc/shadow case).
  ASSERT_TRUE(testing::WriteFile(outside_ + "/shadow", "root:secret-hash:\n").ok());
  fs::create_symlink(outside_ + "/shadow", root_ + "/link");
  auto link = ReadRegularFileAt(root.get(), "link", 1024, "dir/link");
  EXPECT_EQ(link.status().code(), absl::StatusCode::kFailedPrecondition) << link.status();
  EXPECT_EQ(link.status().message(),
            "refusing to read dir/link: it is a symbolic link, not a regular file");

  // A FIFO nobody writes to: refused at once instead of blocking for ever.
  ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  auto fifo = ReadRegularFileAt(root.get(), "fifo", 1024, "fifo");
  EXPECT_EQ(fifo.status().code(), absl::StatusCode::kFailedPrecondition) << fifo.status();
  EXPECT_TRUE(absl::StrContains(fifo.status().message(), "a named pipe (FIFO)")) << fifo.status();

  fs::create_directory(root_ + "/dir");
  EXPECT_TRUE(absl::StrContains(
      ReadRegularFileAt(root.get(), "dir", 1024, "dir").status().message(), "it is a directory"));

  ASSERT_TRUE(testing::WriteFile(root_ + "/big", std::string(2000, 'x')).ok());
  auto big = ReadRegularFileAt(root.get(), "big", 1024, "big");
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  EXPECT_EQ(big.status().message(),
            "refusing to read big: 2000 bytes is more than the limit of 1024 bytes");

  EXPECT_EQ(ReadRegularFileAt(root.get(), "missing", 1024, "missing").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace gitops::common
