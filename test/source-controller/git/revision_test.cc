#include "source-controller/git/revision.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

constexpr char kSha[] = "0123456789abcdef0123456789abcdef01234567";

TEST(RevisionTest, FormatsFluxRevisions) {
  EXPECT_EQ(FormatRevision("main", kSha), std::string("main@sha1:") + kSha);
  EXPECT_EQ(FormatRevision("v1.2.3", kSha), std::string("v1.2.3@sha1:") + kSha);
  EXPECT_EQ(FormatRevision("refs/pull/1/head", kSha), std::string("refs/pull/1/head@sha1:") + kSha);
  EXPECT_EQ(FormatRevision("", kSha), std::string("sha1:") + kSha);
}

TEST(RevisionTest, ParsesWhatItFormatsAndLegacyForms) {
  struct Case {
    std::string text, name, algorithm, hash;
  };
  const std::string sha = kSha;
  const std::vector<Case> cases = {
      {"main@sha1:" + sha, "main", "sha1", sha},
      {"feature/x@sha1:" + sha, "feature/x", "sha1", sha},
      {"refs/pull/1/head@sha1:" + sha, "refs/pull/1/head", "sha1", sha},
      {"a@b@sha1:" + sha, "a@b", "sha1", sha},
      {"sha1:" + sha, "", "sha1", sha},
      {"main/" + sha, "main", "sha1", sha},  // Flux v1beta1
      {sha, "", "sha1", sha},
      {"MAIN@sha1:0123456789ABCDEF0123456789ABCDEF01234567", "MAIN", "sha1", sha},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto p = ParseRevision(c.text);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->name, c.name);
    EXPECT_EQ(p->algorithm, c.algorithm);
    EXPECT_EQ(p->hash, c.hash);
  }
}

TEST(RevisionTest, RejectsMalformedRevisions) {
  const std::string sha = kSha;
  for (const std::string& text : std::vector<std::string>{
           "", "main", "main@", "@sha1:" + sha, "main@sha1:abc", "main@md5:" + sha,
           "main@sha1:" + sha + "00", "sha1:xyz", "main@sha1:" + sha.substr(0, 39) + "g"}) {
    SCOPED_TRACE(text);
    auto p = ParseRevision(text);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(RevisionTest, SameCommitIgnoresTheName) {
  const std::string sha = kSha;
  EXPECT_TRUE(SameCommit("main@sha1:" + sha, "sha1:" + sha));
  EXPECT_TRUE(SameCommit("main@sha1:" + sha, "v1@sha1:" + sha));
  EXPECT_FALSE(SameCommit("main@sha1:" + sha, "main@sha1:" + std::string(40, 'f')));
  EXPECT_FALSE(SameCommit("garbage", "garbage"));
}

TEST(RevisionTest, ShortRefNameStripsHeadsAndTags) {
  EXPECT_EQ(ShortRefName("refs/heads/main"), "main");
  EXPECT_EQ(ShortRefName("refs/heads/feature/x"), "feature/x");
  EXPECT_EQ(ShortRefName("refs/tags/v1.0.0"), "v1.0.0");
  EXPECT_EQ(ShortRefName("refs/pull/1/head"), "refs/pull/1/head");
}

}  // namespace
}  // namespace gitops::source
