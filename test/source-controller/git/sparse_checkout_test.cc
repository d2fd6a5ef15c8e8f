#include "source-controller/git/sparse_checkout.h"

#include "gtest/gtest.h"

namespace gitops::source {
namespace {

TEST(NormalizeSparseCheckoutTest, TrimsDotSlashAndTrailingSlash) {
  auto dirs = NormalizeSparseCheckout({"./apps/", "infra", "a//b/./c/", "././x"});
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  ASSERT_EQ(dirs->size(), 4u);
  EXPECT_EQ((*dirs)[0].path, "apps");
  EXPECT_EQ((*dirs)[0].spec, "./apps/");
  EXPECT_EQ((*dirs)[1].path, "infra");
  EXPECT_EQ((*dirs)[2].path, "a/b/c");
  EXPECT_EQ((*dirs)[3].path, "x");
}

TEST(NormalizeSparseCheckoutTest, RootMeansTheWholeTree) {
  for (const char* root : {"./", ".", ""}) {
    auto dirs = NormalizeSparseCheckout({"apps", root});
    ASSERT_TRUE(dirs.ok()) << root;
    EXPECT_TRUE(dirs->empty()) << root;
  }
  EXPECT_TRUE(NormalizeSparseCheckout({})->empty());
}

TEST(NormalizeSparseCheckoutTest, RejectsEscapesAndAbsolutePaths) {
  for (const char* bad : {"../x", "a/../../x", "/abs", "a\nb"}) {
    auto dirs = NormalizeSparseCheckout({bad});
    ASSERT_FALSE(dirs.ok()) << bad;
    EXPECT_EQ(dirs.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(MatchSparseTest, MatchesWholePathComponents) {
  std::vector<SparseDir> dirs = {{"apps", "apps"}, {"deploy/prod", "deploy/prod"}};
  EXPECT_EQ(MatchSparse(dirs, "apps"), SparseMatch::kInclude);
  EXPECT_EQ(MatchSparse(dirs, "apps/x/y.yaml"), SparseMatch::kInclude);
  EXPECT_EQ(MatchSparse(dirs, "apps-old"), SparseMatch::kExclude);
  EXPECT_EQ(MatchSparse(dirs, "apps.yaml"), SparseMatch::kExclude);
  EXPECT_EQ(MatchSparse(dirs, "deploy"), SparseMatch::kAncestor);
  EXPECT_EQ(MatchSparse(dirs, "deploy/prod/k.yaml"), SparseMatch::kInclude);
  EXPECT_EQ(MatchSparse(dirs, "deploy/production"), SparseMatch::kExclude);
  EXPECT_EQ(MatchSparse(dirs, "deploy/dev"), SparseMatch::kExclude);
  EXPECT_EQ(MatchSparse(dirs, "README.md"), SparseMatch::kExclude);
}

}  // namespace
}  // namespace gitops::source
