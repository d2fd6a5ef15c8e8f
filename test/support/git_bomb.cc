#include "test/support/git_bomb.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "test/support/process.h"

namespace gitops::testing {
namespace {

// Runs `script` with bash in `bare` (set -euo pipefail); returns its output,
// trimmed.
absl::StatusOr<std::string> RunIn(const std::string& bare, const std::string& script) {
  std::error_code ec;
  if (!std::filesystem::exists(bare + "/HEAD", ec)) {
    std::filesystem::create_directories(bare, ec);
    auto init = RunCommand({"git", "init", "--quiet", "--bare", "-b", "main", bare});
    if (!init.ok()) return init.status();
  }
  auto out = RunCommand({"bash", "-c", absl::StrCat("set -euo pipefail\n", script)},
                        absl::Seconds(120), bare);
  if (!out.ok()) return out.status();
  return std::string(absl::StripAsciiWhitespace(*out));
}

// Commits tree "$t" with `parent` to refs/heads/<branch> and prints the sha.
std::string CommitScript(const std::string& branch, const std::string& message,
                         const std::string& parent) {
  return absl::StrCat(
      "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t "
      "GIT_COMMITTER_EMAIL=t@example.com\n",
      "c=$(git commit-tree \"$t\" -m '", message, "'",
      parent.empty() ? "" : absl::StrCat(" -p ", parent), ")\n", "git update-ref refs/heads/",
      branch, " \"$c\"\n", "echo \"$c\"\n");
}

}  // namespace

absl::StatusOr<std::string> WriteGitBomb(const std::string& bare, const std::string& branch,
                                         int64_t blob_bytes, int fanout, int depth,
                                         const std::string& parent) {
  std::string script =
      absl::StrCat("blob=$(head -c ", blob_bytes, " /dev/zero | git hash-object -w --stdin)\n",
                   "t=$(for i in $(seq 0 ", fanout - 1,
                   "); do printf '100644 blob %s\\tf%d\\n' \"$blob\" \"$i\"; done | git mktree)\n",
                   "for d in $(seq 2 ", depth, "); do\n", "  t=$(for i in $(seq 0 ", fanout - 1,
                   "); do printf '040000 tree %s\\td%d\\n' \"$t\" \"$i\"; done | git mktree)\n",
                   "done\n", CommitScript(branch, "bomb", parent));
  return RunIn(bare, script);
}

absl::StatusOr<std::string> WriteSingleFileCommit(const std::string& bare,
                                                  const std::string& branch,
                                                  const std::string& name,
                                                  const std::string& content,
                                                  const std::string& parent) {
  std::string script =
      absl::StrCat("blob=$(printf '%s' '", content, "' | git hash-object -w --stdin)\n",
                   "t=$(printf '100644 blob %s\\t%s\\n' \"$blob\" '", name, "' | git mktree)\n",
                   CommitScript(branch, absl::StrCat("add ", name), parent));
  return RunIn(bare, script);
}

}  // namespace gitops::testing
