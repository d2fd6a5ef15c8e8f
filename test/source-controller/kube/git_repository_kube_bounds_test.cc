// Resource bounds of the source-controller binary (Kubernetes mode) against
// hostile repositories served over loopback (issue 17, item 5): a git bomb
// (one 100 MiB blob of zeros named 1,000 times: 100 GiB checked out from a
// repository of about 600 KB) and a single 150 MiB file, both under
// --artifact-max-size=10Mi. Each fails once, clearly, with the controller's
// peak memory and the bytes it wrote bounded; its git cache is removed, the
// retries do not fetch again, and a later commit that fits is stored.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "test/source-controller/kube/kube_fixture.h"
#include "test/support/git_bomb.h"

namespace gitops::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kMiB = 1024 * 1024;

// The number after "<key>:" in /proc/<pid>/<file> (status: kB; io: bytes),
// or -1.
int64_t ProcValue(pid_t pid, const std::string& file, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/", file));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, key + ":")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    rest = rest.substr(0, rest.find(' '));
    int64_t v = 0;
    if (absl::SimpleAtoi(rest, &v)) return v;
  }
  return -1;
}

// Bytes of disk used under `root` (allocated blocks, symlinks not followed).
int64_t DiskBytes(const std::string& root) {
  int64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0) total += static_cast<int64_t>(st.st_blocks) * 512;
  }
  return total;
}

class GitRepositoryKubeBoundsTest : public SourceKubeTest {
 protected:
  // Waits until the controller logged `msg` for GitRepository `name`.
  bool WaitForLogLine(const std::string& msg, const std::string& name, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    const std::string want_msg = absl::StrCat("\"msg\":\"", msg, "\"");
    const std::string want_name = absl::StrCat("\"name\":\"", name, "\"");
    while (absl::Now() < deadline) {
      for (absl::string_view line : absl::StrSplit(controller_->ReadLog(), '\n')) {
        if (absl::StrContains(line, want_msg) && absl::StrContains(line, want_name)) return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }
};

TEST_F(GitRepositoryKubeBoundsTest, GitBombAndHugeFileFailOnceWithBoundedMemoryAndDisk) {
  const std::string srv = dir_ + "/srv";
  auto bomb = WriteGitBomb(srv + "/bomb.git", "main", 100 * kMiB, 10, 3);
  ASSERT_TRUE(bomb.ok()) << bomb.status();
  auto huge = WriteGitBomb(srv + "/huge.git", "main", 150 * kMiB, 1, 1);  // one file
  ASSERT_TRUE(huge.ok()) << huge.status();
  std::printf("repositories on disk: %lld bytes\n", static_cast<long long>(DiskBytes(srv)));
  StartHttp();
  StartController({"--artifact-max-size=10Mi", "--log-level=debug"});
  ASSERT_FALSE(HasFatalFailure());
  const pid_t pid = controller_->pid();
  const int64_t rss_at_start_kb = ProcValue(pid, "status", "VmRSS");
  ASSERT_GT(rss_at_start_kb, 0);

  const std::string spec = "  interval: 10m\n  timeout: 10s\n  ref:\n    branch: main\n";
  Apply("bomb", http_->Url("bomb.git"), spec);
  Apply("huge", http_->Url("huge.git"), spec);
  for (const auto& [name, sha] : {std::pair{"bomb", *bomb}, std::pair{"huge", *huge}}) {
    json obj = ExpectFailure(name,
                             {"StorageOperationFailed",
                              "ArchiveOperationFailed",
                              {absl::StrCat("revision 'main@sha1:", sha, "'"),
                               "--artifact-max-size (10485760 bytes)", "more than 10485760 bytes"}},
                             absl::Seconds(30));
    EXPECT_FALSE(obj["status"].contains("artifact")) << obj.dump();
    // Retried with backoff (a new commit can fix it), but each retry is one
    // remote check: nothing is fetched or written again.
    EXPECT_TRUE(WaitForLogLine("revision refused for size before: not fetched again", name,
                               absl::Seconds(20)))
        << controller_->ReadLog();
  }

  const int64_t peak_kb = ProcValue(pid, "status", "VmHWM");
  const int64_t written = ProcValue(pid, "io", "wchar");
  const int64_t on_disk = DiskBytes(storage());
  std::printf(
      "controller: rss at start %lld kB, peak %lld kB; wrote %lld bytes; storage %lld bytes\n",
      static_cast<long long>(rss_at_start_kb), static_cast<long long>(peak_kb),
      static_cast<long long>(written), static_cast<long long>(on_disk));
  // Before the fix: the 150 MiB blob inflated in memory, and the bomb
  // written out until the disk filled (spec.timeout ignored).
  EXPECT_LT(peak_kb - rss_at_start_kb, 64 * 1024) << "peak memory grew with the blobs";
  EXPECT_LT(written, 32 * kMiB) << "the controller wrote past --artifact-max-size";
  EXPECT_LT(on_disk, 4 * kMiB);
  for (const char* name : {"bomb", "huge"}) {
    std::error_code ec;
    EXPECT_FALSE(
        fs::exists(fs::path(storage()) / ".git-cache/gitrepository" / kNamespace / name, ec))
        << name << ": the refused revision's git cache is left";
  }
  ExpectNothingHalfWritten();

  // Upstream moves to a commit that fits: stored.
  auto small =
      WriteSingleFileCommit(srv + "/bomb.git", "main", "cm.yaml", "kind: ConfigMap", *bomb);
  ASSERT_TRUE(small.ok()) << small.status();
  RequestReconcile("bomb", "after-fix");
  json fixed = WaitForRevision("bomb", "main@sha1:" + *small, absl::Seconds(30));
  EXPECT_FALSE(HasCondition(fixed, "StorageOperationFailed")) << fixed.dump();
  EXPECT_LT(ProcValue(pid, "io", "wchar"), 32 * kMiB);
}

}  // namespace
}  // namespace gitops::testing
