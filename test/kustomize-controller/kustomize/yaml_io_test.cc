#include "kustomize-controller/kustomize/yaml_io.h"

#include <string>

#include "gtest/gtest.h"

namespace gitops::kustomize {
namespace {

std::string RoundTrip(const std::string& in) {
  absl::StatusOr<Node> n = ParseYamlDocument(in);
  if (!n.ok()) return "ERROR: " + std::string(n.status().message());
  return EmitYaml(*n);
}

TEST(YamlIoTest, SortsKeysLikeGoYamlV2) {
  EXPECT_EQ(RoundTrip("b: 1\na: 2\nkey10: x\nkey9: y\n_k: z\n"),
            "_k: z\na: 2\nb: 1\nkey9: \"y\"\nkey10: x\n");
}

TEST(YamlIoTest, QuotesStringsThatLookLikeOtherTypes) {
  EXPECT_EQ(RoundTrip("a: \"8080\"\nb: yes\nc: \"true\"\nd: \"\"\n"),
            "a: \"8080\"\nb: \"yes\"\nc: \"true\"\nd: \"\"\n");
}

TEST(YamlIoTest, ResolvesNumbersLikeKustomize) {
  EXPECT_EQ(RoundTrip("a: 0644\nb: 0x1F\nc: 1.50\nd: 1e3\ne: 1_000\n"),
            "a: 420\nb: 31\nc: 1.5\nd: 1000\ne: 1000\n");
}

TEST(YamlIoTest, CompactSequencesAndFlowEmpties) {
  EXPECT_EQ(RoundTrip("s:\n  - a: 1\n    b: 2\n  - [x]\nm: {}\nl: []\n"),
            "l: []\nm: {}\ns:\n- a: 1\n  b: 2\n- - x\n");
}

TEST(YamlIoTest, LiteralBlockChomping) {
  EXPECT_EQ(RoundTrip("a: \"x\\ny\"\nb: \"x\\n\"\nc: \"  x\\n\"\n"),
            "a: |-\n  x\n  y\nb: |\n  x\nc: |2\n    x\n");
}

TEST(YamlIoTest, FoldsLongPlainStringsAtEighty) {
  std::string words;
  for (int i = 0; i < 30; ++i) words += "word ";
  words += "end";
  std::string out = RoundTrip("a: " + words + "\n");
  EXPECT_NE(out.find("\n  word"), std::string::npos) << out;
}

TEST(YamlIoTest, DoubleQuotesControlCharacters) {
  EXPECT_EQ(RoundTrip("a: \"x\\ty\"\nb: \"\\x01\"\n"), "a: \"x\\ty\"\nb: \"\\x01\"\n");
}

TEST(YamlIoTest, SplitsDocumentsAndSkipsEmptyOnes) {
  absl::StatusOr<std::vector<Node>> docs =
      ParseYamlStream("---\na: 1\n---\n# c\n---\nb: 2\n...\n---\nc: 3\n");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ(docs->size(), 3u);
}

TEST(YamlIoTest, RejectsHostileInputWithoutHanging) {
  for (const char* bad :
       {",", "[[[[", "a: [1, 2", "{a: 1", "\x01\x02\xff", ": : :", "- - - -\n  x: ["}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<std::vector<Node>> r = ParseYamlStream(bad);
    // Either an error or a value: never a crash or a hang.
    if (r.ok()) SUCCEED();
  }
  // "," parses as a scalar document (kustomize rejects it as a resource later).
  EXPECT_FALSE(ParseYamlStream("a: [1, 2").ok());
}

TEST(YamlIoTest, BoundsAliasExpansion) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  LoadLimits limits;
  limits.max_nodes = 100000;
  absl::StatusOr<std::vector<Node>> r = ParseYamlStream(bomb, limits);
  EXPECT_FALSE(r.ok());
}

TEST(YamlIoTest, RejectsDuplicateKeys) { EXPECT_FALSE(ParseYamlStream("a: 1\na: 2\n").ok()); }

TEST(YamlIoTest, KeyOrderPutsNonLettersFirstAndComparesDigitRuns) {
  EXPECT_TRUE(YamlKeyLess("1k", "Key"));
  EXPECT_TRUE(YamlKeyLess("a9", "a10"));
  EXPECT_FALSE(YamlKeyLess("a10", "a9"));
  EXPECT_TRUE(YamlKeyLess("a", "ab"));
}

TEST(YamlIoTest, JsonMatchesGoEncoding) {
  absl::StatusOr<Node> n = ParseYamlDocument("b: \"<x>&\"\na: [1, true, null]\n");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(EmitJson(*n), "{\"a\":[1,true,null],\"b\":\"\\u003cx\\u003e\\u0026\"}");
}

}  // namespace
}  // namespace gitops::kustomize

namespace gitops::kustomize {
namespace {

TEST(YamlIoTest, KeyOrderSurvivesHugeDigitRuns) {
  // Go wraps int64 on overflow; we must neither crash nor hit UB.
  std::string a = "k" + std::string(40, '9');
  std::string b = "k" + std::string(41, '8');
  EXPECT_NE(YamlKeyLess(a, b), YamlKeyLess(b, a));
}

}  // namespace
}  // namespace gitops::kustomize

namespace gitops::kustomize {
namespace {

TEST(YamlIoTest, DeepNestingFailsCleanly) {
  std::string deep(100000, '[');
  EXPECT_FALSE(ParseYamlStream(deep).ok());
  std::string deep_maps;
  for (int i = 0; i < 5000; ++i) deep_maps += std::string(i, ' ') + "a:\n";
  absl::StatusOr<std::vector<Node>> r = ParseYamlStream(deep_maps);
  EXPECT_FALSE(r.ok());
}

TEST(YamlIoTest, BinaryJunkFailsOrParsesWithoutCrashing) {
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 131) % 256);
  absl::StatusOr<std::vector<Node>> r = ParseYamlStream(junk);
  if (r.ok()) {
    for (const Node& n : *r) EXPECT_FALSE(EmitYaml(n).empty());
  }
}

}  // namespace
}  // namespace gitops::kustomize
