// Reads the signature and the signed bytes of Git commits and tags from a
// local repository with libgit2. No libgit2 header here.
#ifndef GITOPS_SOURCE_CONTROLLER_VERIFY_GIT_OBJECTS_H_
#define GITOPS_SOURCE_CONTROLLER_VERIFY_GIT_OBJECTS_H_

#include <string>

#include "absl/status/statusor.h"

namespace gitops::source {

// A commit or tag as far as signature verification is concerned.
struct SignedGitObject {
  // How Flux names the object in messages: a commit's 40-hex id; a tag's
  // "<name>@<tag object id>", or just "<name>" for a lightweight tag (Flux's
  // git.Tag.String()).
  std::string display;
  // The signature as stored in the object (armored; "-----BEGIN PGP
  // SIGNATURE-----", "-----BEGIN SSH SIGNATURE-----", ...). Empty when the
  // object is not signed, and always for a lightweight tag.
  std::string signature;
  // The bytes the signature covers: the raw object without its signature
  // (what `git verify-commit` / `git verify-tag` hand to gpg).
  std::string payload;
  // True for a tag ref that points straight at a commit.
  bool lightweight_tag = false;
};

// Reads commit `commit_sha` (40 hex digits) of the repository at `git_dir`
// (bare, or a .git directory; no discovery upwards). The signature is the
// commit's "gpgsig" header.
// Errors: InvalidArgument (malformed sha), NotFound (no such repository or
// commit), Internal (other libgit2 failures).
absl::StatusOr<SignedGitObject> ReadGitCommit(const std::string& git_dir,
                                              const std::string& commit_sha);

// Reads the tag `tag` ("v1.0.0" or "refs/tags/v1.0.0") of the repository at
// `git_dir`. For an annotated tag, the signature is the last armored block
// that starts a line of the tag message (as git parses it); a lightweight tag
// yields lightweight_tag = true and no signature.
// Errors: InvalidArgument (empty name), NotFound (no such repository or
// tag, or the tag object is missing), Internal (other libgit2 failures).
absl::StatusOr<SignedGitObject> ReadGitTag(const std::string& git_dir, const std::string& tag);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_VERIFY_GIT_OBJECTS_H_
