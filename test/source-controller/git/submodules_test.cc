#include "source-controller/git/submodules.h"

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

TEST(ParseGitmodulesTest, ReadsSectionsPathsAndUrls) {
  auto modules = ParseGitmodules(
      "# comment\n"
      "[submodule \"libs/a\"]\n"
      "\tpath = libs/a\n"
      "\turl = ../a.git ; trailing comment\n"
      "[Submodule \"b\"]\n"
      "  PATH = \"with space/b\"\n"
      "  URL=https://example.com/b.git\n"
      "  branch = main\n"
      "[core]\n"
      "  bare = false\n");
  ASSERT_TRUE(modules.ok()) << modules.status();
  ASSERT_EQ(modules->size(), 2u);
  EXPECT_EQ((*modules)[0].name, "libs/a");
  EXPECT_EQ((*modules)[0].path, "libs/a");
  EXPECT_EQ((*modules)[0].url, "../a.git");
  EXPECT_EQ((*modules)[1].name, "b");
  EXPECT_EQ((*modules)[1].path, "with space/b");
  EXPECT_EQ((*modules)[1].url, "https://example.com/b.git");
}

TEST(ParseGitmodulesTest, QuotingEscapesContinuationsAndLastValueWins) {
  auto modules = ParseGitmodules(
      "[submodule \"q\\\"x\"] path = a\n"
      "  url = \"u#1\" \\\n"
      "   tail\n"
      "  path = b\\tc\n"
      "  flag\n"
      "[submodule.legacy]\n"
      "  url = ssh://h/l.git\n"
      "\n"
      "[submodule \"q\\\"x\"]\n"
      "  url = second\r\n");
  ASSERT_TRUE(modules.ok()) << modules.status();
  ASSERT_EQ(modules->size(), 2u);
  EXPECT_EQ((*modules)[0].name, "q\"x");
  EXPECT_EQ((*modules)[0].path, "b\tc");
  EXPECT_EQ((*modules)[0].url, "second");
  EXPECT_EQ((*modules)[1].name, "legacy");
  EXPECT_EQ((*modules)[1].url, "ssh://h/l.git");
}

TEST(ParseGitmodulesTest, ContinuationKeepsTheQuotedHash) {
  auto modules = ParseGitmodules("[submodule \"a\"]\nurl = \"u#1\" \\\n tail\t x\n");
  ASSERT_TRUE(modules.ok()) << modules.status();
  // git keeps one space per blank around the continuation.
  EXPECT_EQ((*modules)[0].url, "u#1  tail  x");
}

TEST(ParseGitmodulesTest, RejectsMalformedContent) {
  for (const char* text : {"[submodule \"a\"\npath = x\n", "path = x\n", "[submodule \"a\"]\n=x\n",
                           "[submodule \"a\"]\nurl = \"open\n", "[submodule \"a\"]\nurl = a\\q\n",
                           "[]\n", "[submodule \"a\"]\nurl = x\\"}) {
    auto modules = ParseGitmodules(text);
    EXPECT_FALSE(modules.ok()) << text;
    if (!modules.ok()) {
      EXPECT_EQ(modules.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(modules.status().message().find(".gitmodules line"), absl::string_view::npos);
    }
  }
  auto empty = ParseGitmodules("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ResolveSubmoduleUrlTest, RelativeUrlsResolveAgainstTheParent) {
  struct Case {
    const char* parent;
    const char* url;
    const char* want;
  } cases[] = {
      {"https://h/x/parent.git", "../other.git", "https://h/x/other.git"},
      {"https://h/x/parent.git/", "../other.git", "https://h/x/other.git"},
      {"https://h/x/parent.git", "./sub.git", "https://h/x/parent.git/sub.git"},
      {"https://h/x/parent.git", "../../y/z.git", "https://h/y/z.git"},
      {"ssh://git@h:2222/x/p.git", "../q.git", "ssh://git@h:2222/x/q.git"},
      {"git://127.0.0.1:9/p.git", "./../q.git", "git://127.0.0.1:9/q.git"},
      {"/srv/git/p.git", "../q.git", "/srv/git/q.git"},
      {"file:///srv/p.git", "../q", "file:///srv/q"},
  };
  for (const Case& c : cases) {
    auto got = ResolveSubmoduleUrl(c.parent, c.url);
    ASSERT_TRUE(got.ok()) << c.parent << " + " << c.url << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.parent << " + " << c.url;
  }
}

TEST(ResolveSubmoduleUrlTest, AbsoluteScpLikeAndInvalidUrls) {
  EXPECT_EQ(*ResolveSubmoduleUrl("https://h/p.git", "https://o/q.git"), "https://o/q.git");
  EXPECT_EQ(*ResolveSubmoduleUrl("https://h/p.git", "git@github.com:org/q.git"),
            "ssh://git@github.com/org/q.git");
  EXPECT_EQ(*ResolveSubmoduleUrl("https://h/p.git", "/abs/q.git"), "/abs/q.git");
  EXPECT_FALSE(ResolveSubmoduleUrl("https://h/p.git", "").ok());
  EXPECT_FALSE(ResolveSubmoduleUrl("https://h/p.git", "--upload-pack=x").ok());
  auto climb = ResolveSubmoduleUrl("https://h/p.git", "../../q.git");
  ASSERT_FALSE(climb.ok());
  EXPECT_EQ(climb.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ResolveSubmoduleUrlTest, NeverRepeatsTheParentPassword) {
  auto climb = ResolveSubmoduleUrl("https://u:hunter2@h/p.git", "../../../q.git");
  ASSERT_FALSE(climb.ok());
  EXPECT_EQ(climb.status().message().find("hunter2"), absl::string_view::npos);
}

}  // namespace
}  // namespace gitops::source
