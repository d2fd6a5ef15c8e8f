// Hostile repositories for resource-bound tests, written with git plumbing
// into a bare repository: a "git bomb" (a few hundred KB of objects whose
// tree checks out to gigabytes) and plain small commits on top of it.
#ifndef GITOPS_TEST_SUPPORT_GIT_BOMB_H_
#define GITOPS_TEST_SUPPORT_GIT_BOMB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace gitops::testing {

// Commits to refs/heads/<branch> of the bare repository `bare` (created if
// missing) a tree that names one blob of `blob_bytes` zero bytes `fanout`
// times per directory, `depth` directories deep: fanout^depth files of
// blob_bytes each, from one blob and `depth` trees. The blob is hashed from
// a pipe, so the test itself never holds it. `parent`: the parent commit,
// empty for a root commit. Returns the commit's sha.
absl::StatusOr<std::string> WriteGitBomb(const std::string& bare, const std::string& branch,
                                         int64_t blob_bytes, int fanout, int depth,
                                         const std::string& parent = "");

// Commits to refs/heads/<branch> of `bare` a tree with the single file
// `name` holding `content` (no single quotes), on top of `parent` (empty:
// a root commit). Returns the commit's sha.
absl::StatusOr<std::string> WriteSingleFileCommit(const std::string& bare,
                                                  const std::string& branch,
                                                  const std::string& name,
                                                  const std::string& content,
                                                  const std::string& parent = "");

}  // namespace gitops::testing

#endif  // GITOPS_TEST_SUPPORT_GIT_BOMB_H_
