#include "source-controller/git/git_ref.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

const std::string kMain(40, 'a');
const std::string kDev(40, 'b');
const std::string kTagObj(40, 'c');
const std::string kTagCommit(40, 'd');
const std::string kLight(40, 'e');
const std::string kPull(40, 'f');
const std::string kOld(40, '1');

std::vector<RemoteRef> Refs() {
  return MergePeeled({
      {"HEAD", kMain},
      {"refs/heads/main", kMain},
      {"refs/heads/master", kOld},
      {"refs/heads/dev", kDev},
      {"refs/tags/v1.0.0", kLight},
      {"refs/tags/v1.1.0", kTagObj},
      {"refs/tags/v1.1.0^{}", kTagCommit},
      {"refs/tags/v2.0.0-rc.1", kDev},
      {"refs/tags/not-a-version", kDev},
      {"refs/pull/1/head", kPull},
  });
}

TEST(GitRefTest, SelectRefKindFollowsFluxPrecedence) {
  struct Case {
    std::string name;
    GitReference ref;
    RefKind want;
  };
  const std::vector<Case> cases = {
      {"empty", {}, RefKind::kBranch},
      {"branch", {"main", "", "", "", ""}, RefKind::kBranch},
      {"tag over branch", {"main", "v1", "", "", ""}, RefKind::kTag},
      {"semver over tag", {"main", "v1", "^1", "", ""}, RefKind::kSemver},
      {"name over semver", {"main", "v1", "^1", "refs/heads/x", ""}, RefKind::kName},
      {"commit over all", {"main", "v1", "^1", "refs/heads/x", kMain}, RefKind::kCommit},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(SelectRefKind(c.ref), c.want);
  }
}

TEST(GitRefTest, MergePeeledFoldsAnnotatedTagTargets) {
  std::vector<RemoteRef> refs = Refs();
  ASSERT_EQ(refs.size(), 9u);
  for (const RemoteRef& r : refs) {
    EXPECT_EQ(r.name.find("^{}"), std::string::npos);
    if (r.name == "refs/tags/v1.1.0") {
      EXPECT_EQ(r.oid, kTagObj);
      EXPECT_EQ(r.peeled, kTagCommit);
    } else {
      EXPECT_TRUE(r.peeled.empty()) << r.name;
    }
  }
}

TEST(GitRefTest, ResolvesEachRefKindToFluxRevisions) {
  struct Case {
    std::string name;
    GitReference ref;
    std::string refname, object, commit, revision;
  };
  const std::vector<Case> cases = {
      {"default branch is master", {}, "refs/heads/master", kOld, kOld, "master@sha1:" + kOld},
      {"branch", {"main", "", "", "", ""}, "refs/heads/main", kMain, kMain, "main@sha1:" + kMain},
      {"lightweight tag",
       {"", "v1.0.0", "", "", ""},
       "refs/tags/v1.0.0",
       kLight,
       kLight,
       "v1.0.0@sha1:" + kLight},
      {"annotated tag peels",
       {"", "v1.1.0", "", "", ""},
       "refs/tags/v1.1.0",
       kTagObj,
       kTagCommit,
       "v1.1.0@sha1:" + kTagCommit},
      {"semver",
       {"main", "v1.0.0", ">=1.0.0", "", ""},
       "refs/tags/v1.1.0",
       kTagObj,
       kTagCommit,
       "v1.1.0@sha1:" + kTagCommit},
      {"semver with prerelease",
       {"", "", ">=2.0.0-0", "", ""},
       "refs/tags/v2.0.0-rc.1",
       kDev,
       kDev,
       "v2.0.0-rc.1@sha1:" + kDev},
      {"name",
       {"", "", "", "refs/pull/1/head", ""},
       "refs/pull/1/head",
       kPull,
       kPull,
       "refs/pull/1/head@sha1:" + kPull},
      {"name of a branch",
       {"", "", "", "refs/heads/dev", ""},
       "refs/heads/dev",
       kDev,
       kDev,
       "refs/heads/dev@sha1:" + kDev},
      {"commit", {"", "", "", "", kOld}, "", "", kOld, "sha1:" + kOld},
      {"branch and commit",
       {"main", "", "", "", kOld},
       "refs/heads/main",
       kMain,
       kOld,
       "main@sha1:" + kOld},
      {"tag and commit ignores tag", {"", "v1.0.0", "", "", kOld}, "", "", kOld, "sha1:" + kOld},
  };
  std::vector<RemoteRef> refs = Refs();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ResolveRef(c.ref, refs);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->refname, c.refname);
    EXPECT_EQ(r->object_oid, c.object);
    EXPECT_EQ(r->commit, c.commit);
    EXPECT_EQ(r->revision, c.revision);
  }
}

TEST(GitRefTest, MissingRefsAreNotFoundAndNamed) {
  struct Case {
    std::string name;
    GitReference ref;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"branch", {"nope", "", "", "", ""}, "branch 'nope' not found"},
      {"tag", {"", "v9", "", "", ""}, "tag 'v9' not found"},
      {"semver", {"", "", ">=3.0.0", "", ""}, "no tag matches semver range '>=3.0.0'"},
      {"name", {"", "", "", "refs/pull/2/head", ""}, "ref 'refs/pull/2/head' not found"},
      {"branch of pinned commit", {"gone", "", "", "", kOld}, "branch 'gone' not found"},
  };
  std::vector<RemoteRef> refs = Refs();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ResolveRef(c.ref, refs);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos) << r.status();
  }
}

TEST(GitRefTest, InvalidRefsAreInvalidArgument) {
  const std::vector<GitReference> refs = {
      {"", "", "", "", "abc123"},              // short sha
      {"", "", "", "", std::string(40, 'z')},  // not hex
      {"", "", ">=>1", "", ""},                // bad range
      {"", "", "", "main", ""},                // name must be a full ref
  };
  for (const GitReference& ref : refs) {
    SCOPED_TRACE(DescribeReference(ref));
    EXPECT_EQ(ValidateReference(ref).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ResolveRef(ref, Refs()).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(GitRefTest, ResolveOfflineOnlyForPinnedCommits) {
  auto commit = ResolveOffline({"", "", "", "", kOld});
  ASSERT_TRUE(commit.has_value());
  EXPECT_EQ(commit->revision, "sha1:" + kOld);
  EXPECT_TRUE(commit->refname.empty());
  auto branch_commit = ResolveOffline({"dev", "", "", "", kOld});
  ASSERT_TRUE(branch_commit.has_value());
  EXPECT_EQ(branch_commit->revision, "dev@sha1:" + kOld);
  EXPECT_EQ(branch_commit->refname, "refs/heads/dev");
  EXPECT_FALSE(ResolveOffline({"main", "", "", "", ""}).has_value());
  EXPECT_FALSE(ResolveOffline({"", "v1", "", "", ""}).has_value());
}

TEST(GitRefTest, DescribeReferenceNamesTheDecidingField) {
  EXPECT_EQ(DescribeReference({}), "branch 'master'");
  EXPECT_EQ(DescribeReference({"main", "v1", "", "", ""}), "tag 'v1'");
  EXPECT_EQ(DescribeReference({"", "", "^1", "", ""}), "semver '^1'");
  EXPECT_EQ(DescribeReference({"", "", "", "refs/pull/1/head", ""}), "ref 'refs/pull/1/head'");
  EXPECT_EQ(DescribeReference({"main", "", "", "", kOld}), "branch 'main' commit '" + kOld + "'");
}

}  // namespace
}  // namespace gitops::source
