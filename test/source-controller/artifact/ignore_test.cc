#include "source-controller/artifact/ignore.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "test/support/process.h"

namespace gitops::source {
namespace {

using gitops::testing::MakeTempDir;
using gitops::testing::RemoveTree;
using gitops::testing::WriteFile;

struct MatchCase {
  const char* name;
  const char* patterns;
  const char* path;
  bool is_dir;
  bool excluded;
};

TEST(IgnoreMatcherTest, GitignoreSemantics) {
  const MatchCase cases[] = {
      {"plain name matches at root", "foo", "foo", false, true},
      {"plain name matches deep", "foo", "a/b/foo", false, true},
      {"plain name excludes a directory's contents", "foo", "foo/bar.yaml", false, true},
      {"plain name does not match a prefix", "foo", "foobar", false, false},
      {"star within a name", "*.log", "x/y/debug.log", false, true},
      {"star does not match other extensions", "*.log", "debug.logs", false, false},
      {"question mark is one character", "file?.txt", "file1.txt", false, true},
      {"question mark is exactly one", "file?.txt", "file10.txt", false, false},
      {"character class", "file[0-9].txt", "file7.txt", false, true},
      {"character class miss", "file[0-9].txt", "filex.txt", false, false},
      {"negated class uses caret (Go)", "file[^0-9].txt", "filex.txt", false, true},
      {"negated class rejects members", "file[^0-9].txt", "file1.txt", false, false},
      {"escaped star is literal", "a\\*b", "a*b", false, true},
      {"escaped star does not glob", "a\\*b", "axb", false, false},
      {"malformed class matches nothing", "a[", "a[", false, false},
      {"dir-only pattern skips files", "build/", "build", false, false},
      {"dir-only pattern matches dirs", "build/", "build", true, true},
      {"dir-only pattern excludes contents", "build/", "build/out.yaml", false, true},
      {"dir-only pattern matches deep dirs", "build/", "a/build/x", false, true},
      {"leading slash anchors", "/foo", "foo", false, true},
      {"leading slash anchors to root only", "/foo", "a/foo", false, false},
      {"middle slash anchors", "a/foo", "a/foo", false, true},
      {"middle slash anchors to root only", "a/foo", "x/a/foo", false, false},
      {"anchored pattern excludes contents", "/deploy", "deploy/app/x.yaml", false, true},
      {"anchored star one level", "/a/*", "a/b", false, true},
      {"anchored star excludes below", "/a/*", "a/b/c", false, true},
      {"anchored star needs a component", "/a/*", "a", true, false},
      {"double star prefix at root", "**/foo", "foo", false, true},
      {"double star prefix deep", "**/foo", "a/b/foo", false, true},
      {"double star prefix deep dir", "**/foo/bar", "x/foo/bar", false, true},
      {"double star suffix", "abc/**", "abc/x/y", false, true},
      {"double star middle", "a/**/b", "a/x/y/b", false, true},
      {"double star middle zero dirs", "a/**/b", "a/b", false, true},
      {"double star middle miss", "a/**/b", "a/x/c", false, false},
      {"later negation re-includes", "*.yaml\n!keep.yaml", "keep.yaml", false, false},
      {"negation only affects its match", "*.yaml\n!keep.yaml", "drop.yaml", false, true},
      {"later exclusion wins over negation", "!keep.yaml\n*.yaml", "keep.yaml", false, true},
      {"negation re-includes below excluded dir (go-git)", "dir/\n!dir/keep.yaml", "dir/keep.yaml",
       false, false},
      {"exclude everything then re-include a dir", "/*\n!/deploy", "deploy/app.yaml", false, false},
      {"exclude everything excludes others", "/*\n!/deploy", "src/main.go", false, true},
      {"comments are ignored", "# foo\nbar", "# foo", false, false},
      {"blank lines are ignored", "\n   \nbar", "bar", false, true},
      {"trailing spaces are trimmed", "bar   ", "bar", false, true},
      {"CRLF line endings", "bar\r\nbaz\r\n", "baz", false, true},
      {"no patterns exclude nothing", "", "anything", false, false},
      {"lone star matches any name", "*", "a/b", false, true},
      {"star suffix", "*.tar.gz", "dist/app.tar.gz", false, true},
      {"star suffix needs the whole suffix", "*.tar.gz", "app.gz", false, false},
      {"stars on both sides", "*val*", "a/interval.yaml", false, true},
      {"escaped star after a star", "*\\*", "a*", false, true},
      {"escaped star after a star miss", "*\\*", "ab", false, false},
      {"non-ASCII question mark is one rune", "caf?.yaml", "caf\xc3\xa9.yaml", false, true},
  };
  for (const MatchCase& c : cases) {
    SCOPED_TRACE(c.name);
    IgnoreMatcher m;
    m.AddPatterns(c.patterns);
    EXPECT_EQ(m.Excluded(c.path, c.is_dir), c.excluded) << c.patterns << " vs " << c.path;
  }
}

TEST(IgnoreMatcherTest, DomainScopesPatterns) {
  struct Case {
    const char* name;
    const char* domain;
    const char* patterns;
    const char* path;
    bool excluded;
  } cases[] = {
      {"plain name inside the domain", "apps", "*.txt", "apps/a/notes.txt", true},
      {"plain name outside the domain", "apps", "*.txt", "notes.txt", false},
      {"sibling directory is outside", "apps", "*.txt", "apps2/notes.txt", false},
      {"anchored to the domain", "apps", "/local", "apps/local/x", true},
      {"anchored to the domain, not deeper", "apps", "/local", "apps/sub/local", false},
      {"the domain itself is never matched", "apps", "apps", "apps", false},
      {"nested domain", "a/b", "x", "a/b/c/x", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    IgnoreMatcher m;
    m.AddPatterns(c.patterns, c.domain);
    EXPECT_EQ(m.Excluded(c.path, false), c.excluded);
  }
}

TEST(IgnoreMatcherTest, HasNegationsReflectsPatterns) {
  IgnoreMatcher m;
  m.AddPatterns("a\nb/");
  EXPECT_FALSE(m.has_negations());
  m.AddPatterns("!c");
  EXPECT_TRUE(m.has_negations());
  EXPECT_EQ(m.size(), 3u);
}

class LoadIgnoreRulesTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = MakeTempDir("ignore-rules"); }
  void TearDown() override { RemoveTree(root_); }
  void Write(const std::string& rel, const std::string& content) {
    ASSERT_TRUE(WriteFile(root_ + "/" + rel, content).ok());
  }
  std::string root_;
};

TEST_F(LoadIgnoreRulesTest, FluxDefaultsApplyWithoutOwnPatterns) {
  auto rules = LoadIgnoreRules(root_, std::nullopt);
  ASSERT_TRUE(rules.ok()) << rules.status();
  struct Case {
    const char* path;
    bool is_dir;
    bool excluded;
  } cases[] = {
      {".git", true, true},
      {".git/config", false, true},
      {".gitignore", false, true},
      {"sub/.gitmodules", false, true},
      {".gitattributes", false, true},
      {"logo.png", false, true},
      {"img/a.JPG", false, false},
      {"img/a.jpg", false, true},
      {"dist/x.tar.gz", false, true},
      {"a.zip", false, true},
      {".github", true, true},
      {".github/workflows/ci.yaml", false, true},
      {".circleci/config.yml", false, true},
      {".travis.yml", false, true},
      {".gitlab-ci.yml", false, true},
      {"deep/.sops.yaml", false, true},
      {".goreleaser.yml", false, true},
      {"x/.flux.yaml", false, true},
      {"deploy/app.yaml", false, false},
      {"kustomization.yaml", false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    EXPECT_EQ(rules->Excluded(c.path, c.is_dir), c.excluded);
  }
}

TEST_F(LoadIgnoreRulesTest, SpecIgnoreReplacesNonVcsDefaults) {
  auto rules = LoadIgnoreRules(root_, std::string("/secret\n"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE(rules->Excluded("secret/key.yaml", false));
  EXPECT_TRUE(rules->Excluded(".git/HEAD", false));  // VCS patterns stay
  EXPECT_FALSE(rules->Excluded("logo.png", false));  // extension defaults are gone
  EXPECT_FALSE(rules->Excluded(".github/x.yaml", false));
}

TEST_F(LoadIgnoreRulesTest, EmptySpecIgnoreKeepsDefaults) {
  auto rules = LoadIgnoreRules(root_, std::string("# only a comment\n\n"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE(rules->Excluded("logo.png", false));
}

TEST_F(LoadIgnoreRulesTest, SourceIgnoreFilesAreScopedToTheirDirectory) {
  Write(".sourceignore", "*.txt\n");
  Write("apps/.sourceignore", "local/\n!keep.txt\n");
  Write("apps/deeper/.sourceignore", "/only-here.yaml\n");
  auto rules = LoadIgnoreRules(root_, std::nullopt);
  ASSERT_TRUE(rules.ok()) << rules.status();
  struct Case {
    const char* path;
    bool excluded;
  } cases[] = {
      {"notes.txt", true},                   // root .sourceignore
      {"apps/notes.txt", true},              // root patterns apply below
      {"apps/keep.txt", false},              // deeper file re-includes
      {"keep.txt", true},                    // ...only in its own directory
      {"apps/local/x.yaml", true},           // apps/.sourceignore
      {"local/x.yaml", false},               // not outside apps/
      {"apps/deeper/only-here.yaml", true},  // anchored to apps/deeper
      {"apps/deeper/x/only-here.yaml", false},
      {"logo.png", false},    // own patterns replace extension defaults
      {".git/config", true},  // VCS stays
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    EXPECT_EQ(rules->Excluded(c.path, false), c.excluded);
  }
}

TEST_F(LoadIgnoreRulesTest, SpecIgnoreWinsOverSourceIgnore) {
  Write(".sourceignore", "!important.txt\n");
  auto rules = LoadIgnoreRules(root_, std::string("*.txt\n"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE(rules->Excluded("important.txt", false));
}

TEST_F(LoadIgnoreRulesTest, SourceIgnoreInsideDotGitIsNotRead) {
  Write(".git/.sourceignore", "*.yaml\n");
  auto rules = LoadIgnoreRules(root_, std::nullopt);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_FALSE(rules->Excluded("app.yaml", false));
  EXPECT_TRUE(rules->Excluded("logo.png", false));  // defaults still apply
}

TEST_F(LoadIgnoreRulesTest, MissingRootIsNotFound) {
  auto rules = LoadIgnoreRules(root_ + "/absent", std::nullopt);
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kNotFound);
}

// Issue 17: the checkout's ignore files are the repository author's. A
// .sourceignore that is a symlink (to a secret, /proc/self/pagemap, a FIFO)
// or is too large is refused with a message naming it in the repository;
// the walk never enters a symlinked directory. What the links point at lives
// in a directory this test owns, outside the checkout.
class HostileIgnoreFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("ignore-hostile");
    tree_ = dir_ + "/tree";
    outside_ = dir_ + "/outside";
    ASSERT_TRUE(WriteFile(tree_ + "/deploy/app.yaml", "kind: ConfigMap\n").ok());
    ASSERT_TRUE(WriteFile(outside_ + "/shadow", "root:$6$secret-hash:19000::::::\n").ok());
  }
  void TearDown() override { RemoveTree(dir_); }
  std::string dir_, tree_, outside_;
};

TEST_F(HostileIgnoreFilesTest, SymlinkedSourceIgnoreIsRefusedNotRead) {
  namespace fs = std::filesystem;
  for (const std::string rel : {".sourceignore", "deploy/.sourceignore"}) {
    SCOPED_TRACE(rel);
    fs::create_symlink(outside_ + "/shadow", tree_ + "/" + rel);
    auto rules = LoadIgnoreRules(tree_, std::nullopt);
    ASSERT_FALSE(rules.ok());
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kFailedPrecondition) << rules.status();
    EXPECT_EQ(rules.status().message(),
              absl::StrCat("load .sourceignore files: refusing to read ", rel,
                           ": it is a symbolic link, not a regular file; ignore files must be "
                           "regular files in the repository, of at most 1048576 bytes"));
    EXPECT_FALSE(absl::StrContains(rules.status().message(), "secret-hash"));
    fs::remove(tree_ + "/" + rel);
  }
}

// The link is never opened: /proc/self/pagemap once grew the controller to
// 4 GB. (Even a regression here reads at most max_file_bytes + 1 bytes.)
TEST_F(HostileIgnoreFilesTest, SourceIgnoreLinkToProcPagemapIsNeverOpened) {
  std::filesystem::create_symlink("/proc/self/pagemap", tree_ + "/.sourceignore");
  auto rules = LoadIgnoreRules(tree_, std::nullopt);
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kFailedPrecondition) << rules.status();
  EXPECT_TRUE(absl::StrContains(rules.status().message(), "it is a symbolic link"))
      << rules.status();
}

TEST_F(HostileIgnoreFilesTest, FifoSourceIgnoreIsRefusedAtOnce) {
  // Without O_NONBLOCK and the type check, opening a FIFO nobody writes to
  // blocks the worker for ever.
  ASSERT_EQ(mkfifo((tree_ + "/deploy/.sourceignore").c_str(), 0600), 0);
  const absl::Time start = absl::Now();
  auto rules = LoadIgnoreRules(tree_, std::nullopt);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kFailedPrecondition) << rules.status();
  EXPECT_TRUE(absl::StrContains(rules.status().message(),
                                "refusing to read deploy/.sourceignore: it is a named pipe (FIFO)"))
      << rules.status();
}

TEST_F(HostileIgnoreFilesTest, OversizedSourceIgnoreIsRefused) {
  ASSERT_TRUE(WriteFile(tree_ + "/.sourceignore", std::string(4096, '#')).ok());
  IgnoreLoadOptions options;
  options.max_file_bytes = 1024;
  auto rules = LoadIgnoreRules(tree_, std::nullopt, options);
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kResourceExhausted) << rules.status();
  EXPECT_TRUE(absl::StrContains(
      rules.status().message(),
      "refusing to read .sourceignore: 4096 bytes is more than the limit of 1024 bytes"))
      << rules.status();
  options.max_file_bytes = 4096;
  EXPECT_TRUE(LoadIgnoreRules(tree_, std::nullopt, options).ok());
}

TEST_F(HostileIgnoreFilesTest, SymlinkedDirectoriesAreNotWalked) {
  namespace fs = std::filesystem;
  ASSERT_TRUE(WriteFile(outside_ + "/elsewhere/.sourceignore", "*.yaml\n").ok());
  fs::create_directory_symlink(outside_ + "/elsewhere", tree_ + "/linked");
  auto rules = LoadIgnoreRules(tree_, std::nullopt);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_FALSE(rules->Excluded("linked/app.yaml", false));
  EXPECT_TRUE(rules->Excluded("logo.png", false)) << "no own patterns were found";
}

TEST_F(HostileIgnoreFilesTest, SourceIgnoreDirectoryIsSkipped) {
  ASSERT_TRUE(WriteFile(tree_ + "/.sourceignore/x", "*.yaml\n").ok());
  auto rules = LoadIgnoreRules(tree_, std::nullopt);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_FALSE(rules->Excluded("deploy/app.yaml", false));
}

TEST_F(HostileIgnoreFilesTest, PastTheDeadlineTheWalkStops) {
  IgnoreLoadOptions options;
  options.deadline = absl::Now() - absl::Seconds(1);
  auto rules = LoadIgnoreRules(tree_, std::nullopt, options);
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kDeadlineExceeded) << rules.status();
  EXPECT_TRUE(absl::StrContains(rules.status().message(), "spec.timeout")) << rules.status();
}

}  // namespace
}  // namespace gitops::source
