#include "source-controller/git/semver.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

TEST(SemVersionTest, ParsesLenientForms) {
  struct Case {
    std::string text;
    uint64_t major, minor, patch;
    std::string pre, meta;
  };
  const std::vector<Case> cases = {
      {"1.2.3", 1, 2, 3, "", ""},
      {"v1.2.3", 1, 2, 3, "", ""},
      {"1.2", 1, 2, 0, "", ""},
      {"v2", 2, 0, 0, "", ""},
      {"1.0.0-rc.1+build.5", 1, 0, 0, "rc.1", "build.5"},
      {"0.0.1-alpha-2", 0, 0, 1, "alpha-2", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto v = SemVersion::Parse(c.text);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->major(), c.major);
    EXPECT_EQ(v->minor(), c.minor);
    EXPECT_EQ(v->patch(), c.patch);
    EXPECT_EQ(v->prerelease(), c.pre);
    EXPECT_EQ(v->metadata(), c.meta);
    EXPECT_EQ(v->original(), c.text);
  }
}

TEST(SemVersionTest, RejectsNonVersions) {
  for (const char* text : {"", "v", "abc", "1.2.3.4", "1..2", "1.2.3-", "1.2.3-01", "1.2.3+",
                           "latest", "1.2.x", "-1.2.3", "1.2.3-a..b"}) {
    SCOPED_TRACE(text);
    auto v = SemVersion::Parse(text);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(SemVersionTest, OrdersBySemverPrecedence) {
  // Ascending, from the semver 2.0 spec example plus metadata (ignored).
  const std::vector<std::string> ordered = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                            "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                            "1.0.0-rc.1",  "1.0.0",         "1.0.1",
                                            "1.1.0",       "2.0.0"};
  for (size_t i = 0; i + 1 < ordered.size(); ++i) {
    SCOPED_TRACE(ordered[i] + " < " + ordered[i + 1]);
    auto a = SemVersion::Parse(ordered[i]);
    auto b = SemVersion::Parse(ordered[i + 1]);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LT(a->Compare(*b), 0);
    EXPECT_GT(b->Compare(*a), 0);
  }
  EXPECT_EQ(SemVersion::Parse("v1.0.0+abc")->Compare(*SemVersion::Parse("1.0.0")), 0);
}

TEST(SemverConstraintTest, MatchesLikeMastermindsV3) {
  struct Case {
    std::string constraint;
    std::string version;
    bool match;
  };
  const std::vector<Case> cases = {
      {"1.2.3", "1.2.3", true},
      {"1.2.3", "1.2.4", false},
      {"=1.2.3", "v1.2.3", true},
      {"v1.2.3", "1.2.3", true},
      {"!=1.2.3", "1.2.4", true},
      {"!=1.2.3", "1.2.3", false},
      {"!=1.2.x", "1.2.5", false},
      {"!=1.2.x", "1.3.0", true},
      {">1.2.3", "1.2.4", true},
      {">1.2.3", "1.2.3", false},
      {">1.2", "1.2.5", false},  // 1.2 means 1.2.x: need 1.3.0 or later
      {">1.2", "1.3.0", true},
      {">1", "1.9.0", false},
      {">1", "2.0.0", true},
      {">=1.2", "1.2.0", true},
      {">=1.2", "1.1.9", false},
      {"=>1.2", "1.2.0", true},
      {"<2", "1.9.9", true},
      {"<2", "2.0.0", false},
      {"<=1.2", "1.2.9", true},
      {"<=1.2", "1.3.0", false},
      {"=<1.2.3", "1.2.3", true},
      {"1.2 - 1.4.5", "1.2.0", true},
      {"1.2 - 1.4.5", "1.4.5", true},
      {"1.2 - 1.4.5", "1.4.6", false},
      {"1.2 - 1.4.5", "1.1.9", false},
      {"1.2.x", "1.2.9", true},
      {"1.2.x", "1.3.0", false},
      {"1.X", "1.9.0", true},
      {"*", "5.0.0", true},
      {"x", "0.0.1", true},
      {"*", "1.0.0-beta", false},  // prereleases need a prerelease in the range
      {"~1.2.3", "1.2.9", true},
      {"~1.2.3", "1.3.0", false},
      {"~1.2.3", "1.2.2", false},
      {"~1", "1.9.0", true},
      {"~1", "2.0.0", false},
      {"~>1.2", "1.2.7", true},
      {"^1.2.3", "1.9.9", true},
      {"^1.2.3", "2.0.0", false},
      {"^1.2.3", "1.2.2", false},
      {"^0.2.3", "0.2.9", true},
      {"^0.2.3", "0.3.0", false},
      {"^0.0.3", "0.0.3", true},
      {"^0.0.3", "0.0.4", false},
      {"^0.0", "0.0.9", true},
      {"^0.0", "0.1.0", false},
      {"^0", "0.9.9", true},
      {"^0", "1.0.0", false},
      {">= 1.2, < 3.0.0 || >= 4.2.3", "2.5.0", true},
      {">= 1.2, < 3.0.0 || >= 4.2.3", "3.5.0", false},
      {">= 1.2, < 3.0.0 || >= 4.2.3", "4.2.3", true},
      {">=1.0 <2.0", "1.5.0", true},
      {">=1.0 <2.0", "2.0.0", false},
      {">=1.0,<2.0", "1.0.0", true},
      {">=1.0.0", "1.1.0-beta", false},
      {">=1.0.0-alpha", "1.0.0-beta", true},
      {">=1.0.0-alpha", "1.0.0-0", false},
      {"^1.0.0-0", "1.0.0-rc.1", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.constraint + " vs " + c.version);
    auto constraint = SemverConstraint::Parse(c.constraint);
    ASSERT_TRUE(constraint.ok()) << constraint.status();
    auto version = SemVersion::Parse(c.version);
    ASSERT_TRUE(version.ok()) << version.status();
    EXPECT_EQ(constraint->Matches(*version), c.match);
  }
}

TEST(SemverConstraintTest, RejectsMalformedRanges) {
  for (const char* text : {"", "   ", "abc", ">=", "1.2.3.4", "1.2 -", "- 1.2", ">>1.2", "=>>1",
                           "1.2 || ", "~> ", ">=1.0 <", "1.2.3-", "^v"}) {
    SCOPED_TRACE(text);
    auto c = SemverConstraint::Parse(text);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(SemverConstraintTest, HighestMatchingPicksTheLargestMatchingTag) {
  const std::vector<std::string> tags = {"v1.0.0", "v1.2.0",      "1.2.0", "v2.0.0",
                                         "latest", "v1.3.0-rc.1", "v0.9.0"};
  struct Case {
    std::string constraint;
    std::string want;  // empty: none
  };
  const std::vector<Case> cases = {
      {"^1.0", "v1.2.0"},  // ties between "1.2.0" and "v1.2.0" go to the larger name
      {"*", "v2.0.0"},
      {"<1.0", "v0.9.0"},
      {"~1.3.0-0", "v1.3.0-rc.1"},
      {">=1.3.0-0 <2.0.0", ""},  // each term filters prereleases: "<2.0.0" drops v1.3.0-rc.1
      {">=3.0", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.constraint);
    auto constraint = SemverConstraint::Parse(c.constraint);
    ASSERT_TRUE(constraint.ok()) << constraint.status();
    auto best = HighestMatching(*constraint, tags);
    if (c.want.empty()) {
      EXPECT_FALSE(best.has_value());
    } else {
      ASSERT_TRUE(best.has_value());
      EXPECT_EQ(best->original(), c.want);
    }
  }
}

}  // namespace
}  // namespace gitops::source
