// Resolution of a Flux GitReference against a remote's advertised refs.
// Pure functions over values (the libgit2 adapter supplies the ref list).
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_GIT_REF_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_GIT_REF_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "source-controller/git/git_fetcher.h"

namespace gitops::source {

// Which field of a GitReference decides, by Flux's precedence.
enum class RefKind { kCommit, kName, kSemver, kTag, kBranch };

// commit > name > semver > tag > branch; an empty ref is kBranch.
RefKind SelectRefKind(const GitReference& ref);

// The branch an empty ref means ("master", Flux's default).
inline constexpr char kDefaultBranch[] = "master";

// InvalidArgument for a commit that is not 40 hex digits or a semver range
// that does not parse.
absl::Status ValidateReference(const GitReference& ref);

// "branch 'main'", "tag 'v1'", "semver '>=1.0'", "ref 'refs/pull/1/head'",
// "commit 'abc…'" or "branch 'main' commit 'abc…'": for messages.
std::string DescribeReference(const GitReference& ref);

// One advertised ref. `peeled` is the commit an annotated tag points to (from
// the "<name>^{}" line), empty otherwise.
struct RemoteRef {
  std::string name;
  std::string oid;
  std::string peeled;
};

// Folds "refs/tags/x^{}" entries of a raw ls-remote listing into the
// `peeled` field of "refs/tags/x". Order of first appearance is kept.
std::vector<RemoteRef> MergePeeled(const std::vector<std::pair<std::string, std::string>>& raw);

struct ResolvedRef {
  // Full ref to fetch ("refs/heads/main"); empty for a commit-only ref.
  std::string refname;
  // The object the ref points to (a tag object for annotated tags); empty for
  // a commit-only ref.
  std::string object_oid;
  // The commit to check out.
  std::string commit;
  // Flux revision string.
  std::string revision;
};

// Resolves `ref` against `refs`. NotFound (naming what is missing) when the
// branch, tag or ref name is not advertised or no tag matches the semver
// range; InvalidArgument for an invalid ref. For kCommit with a branch, the
// branch tip is `object_oid` and the pinned commit `commit`.
absl::StatusOr<ResolvedRef> ResolveRef(const GitReference& ref, const std::vector<RemoteRef>& refs);

// The resolution of a commit-pinned ref (kCommit), which needs no network;
// nullopt for other kinds. `object_oid` is empty.
std::optional<ResolvedRef> ResolveOffline(const GitReference& ref);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_GIT_REF_H_
