// Conformance: our build of every case under test/kustomize/cases must equal,
// byte for byte, what `kubectl kustomize` (kustomize v5.5.0) printed when the
// case was recorded (expected.yaml), or fail where the oracle failed
// (expected-error.txt). Regenerate with test/kustomize/regenerate.sh.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kustomize-controller/kustomize/engine.h"

namespace gitops::kustomize {
namespace {

namespace fs = std::filesystem;

std::string CasesDir() { return std::string(GITOPS_SOURCE_DIR) + "/test/kustomize/cases"; }

std::vector<std::string> CaseNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(CasesDir(), ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory()) names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// First differing line, for a readable failure.
std::string FirstDiff(const std::string& want, const std::string& got) {
  std::istringstream a(want), b(got);
  std::string la, lb;
  int line = 0;
  while (true) {
    ++line;
    bool ha = static_cast<bool>(std::getline(a, la));
    bool hb = static_cast<bool>(std::getline(b, lb));
    if (!ha && !hb) return "identical lines (trailing newline differs)";
    if (la != lb || ha != hb) {
      return "line " + std::to_string(line) + ":\n  want: " + (ha ? la : "<eof>") +
             "\n  got:  " + (hb ? lb : "<eof>");
    }
  }
}

// Significant words of an error message (paths and filler words dropped),
// to check that our error is about the same thing as kustomize's.
std::set<std::string> Words(const std::string& text) {
  static const std::set<std::string> kStop = {
      "accumulating", "resources", "resource", "error",     "from",   "kustomization",
      "object",       "field",     "with",     "that",      "this",   "which",
      "file",         "files",     "path",     "directory", "failed", "cases",
      "kustomize",    "test",      "work",     "main"};
  std::string no_paths = std::regex_replace(text, std::regex("/[A-Za-z0-9_./<>-]+"), " ");
  std::set<std::string> out;
  std::smatch m;
  std::string rest = no_paths;
  std::regex word("[A-Za-z][A-Za-z_.-]{4,}");
  while (std::regex_search(rest, m, word)) {
    std::string w = m.str();
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!kStop.count(w)) out.insert(w);
    rest = m.suffix();
  }
  return out;
}

class ConformanceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ConformanceTest, MatchesKustomize) {
  fs::path dir = fs::path(CasesDir()) / GetParam();
  fs::path build_dir = dir;
  if (fs::exists(dir / "build-dir")) {
    std::string sub = Slurp(dir / "build-dir");
    while (!sub.empty() && (sub.back() == '\n' || sub.back() == ' ')) sub.pop_back();
    build_dir = dir / sub;
  }
  Engine engine("/");
  absl::StatusOr<std::vector<Resource>> got = engine.Build(build_dir.string());
  if (fs::exists(dir / "expected-error.txt")) {
    std::string theirs = Slurp(dir / "expected-error.txt");
    ASSERT_FALSE(got.ok()) << "kustomize rejects this input with: " << theirs;
    // Loose match: the messages share a significant word, unless the case
    // documents why ours differs (error-differs.txt).
    if (fs::exists(dir / "error-differs.txt")) return;
    std::set<std::string> ours = Words(std::string(got.status().message()));
    std::set<std::string> want = Words(theirs);
    bool overlap = false;
    for (const std::string& w : ours) overlap = overlap || want.count(w) > 0;
    EXPECT_TRUE(overlap) << "ours: " << got.status().message() << "\nkustomize: " << theirs;
    return;
  }
  ASSERT_TRUE(fs::exists(dir / "expected.yaml")) << "run test/kustomize/regenerate.sh";
  ASSERT_TRUE(got.ok()) << got.status();
  std::string want = Slurp(dir / "expected.yaml");
  std::string out = Engine::ToYaml(*got);
  EXPECT_EQ(want, out) << FirstDiff(want, out);
}

INSTANTIATE_TEST_SUITE_P(Cases, ConformanceTest, ::testing::ValuesIn(CaseNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(ConformanceSuite, HasCases) { EXPECT_GE(CaseNames().size(), 1u); }

}  // namespace
}  // namespace gitops::kustomize
