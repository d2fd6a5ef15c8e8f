// Signature verification of Git commits and tags for GitRepository
// spec.verify (Flux source.toolkit.fluxcd.io/v1: `mode` HEAD | Tag |
// TagAndHEAD, `secretRef` to a Secret of public keys), with Flux's
// semantics, condition reasons and messages (source-controller v1.9,
// fluxcd/pkg git v0.52).
//
// The Secret: every data value whose key does not end in ".sshpub" is an
// ASCII-armored OpenPGP key ring (Flux documents "<name>.asc" and accepts
// any other key for backwards compatibility); ".sshpub" values are SSH
// authorized keys, which Flux uses for SSH-signed objects. OpenPGP
// verification runs GnuPG through gpgme (see openpgp.h); SSH verification
// runs OpenSSH's `ssh-keygen -Y verify` (see ssh.h).
//
// All functions are thread-safe and read `git_dir` only; concurrent calls
// (several GitRepositories) each use their own private GnuPG home or
// allowed_signers directory.
#ifndef GITOPS_SOURCE_CONTROLLER_VERIFY_VERIFY_H_
#define GITOPS_SOURCE_CONTROLLER_VERIFY_VERIFY_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

// spec.verify.mode.
enum class VerificationMode { kHead, kTag, kTagAndHead };

// Parses spec.verify.mode: "HEAD" and "head" (Flux keeps the lowercase
// variant for backwards compatibility), "Tag", "TagAndHEAD"; an empty
// string is "HEAD" (the CRD default). InvalidArgument for anything else,
// naming the field and the allowed values.
absl::StatusOr<VerificationMode> ParseVerificationMode(absl::string_view mode);

// Secret data: data key -> decoded value (as common DecodeSecretData gives).
using VerificationKeys = std::map<std::string, std::string>;

// A good signature.
struct VerifiedSignature {
  // The object as Flux names it in messages: a commit's 40-hex id, a tag's
  // "<name>@<tag object id>".
  std::string object;
  // What Flux reports as the key: for OpenPGP, the key ID of the primary
  // key whose key or subkey made the signature, 16 uppercase hex digits; for
  // SSH, the key's SHA256 fingerprint "SHA256:<unpadded base64>" (as
  // `ssh-keygen -l` prints it).
  std::string key_id;
};

// Verifies the signature of commit `commit_sha` (40 hex digits) in the
// repository at `git_dir` (the fetcher's bare cache directory, or any .git
// directory) with the OpenPGP keys of `secret_data`, or with its ".sshpub"
// keys when the commit is SSH-signed.
//
// Error messages are Flux's SourceVerified condition messages, e.g.
// "signature verification of commit '<sha>' failed: unable to verify Git
// commit: unable to verify payload with any of the given key rings: no
// matching key", or for SSH "...failed: unable to verify Git commit SSH
// signature: unable to verify payload with any of the given authorized keys:
// no matching key\npublic key does not match" (Flux joins the causes with
// newlines). Codes:
//   FailedPrecondition  not signed ("...failed: unsupported signature type:
//                       empty"), or signed in a format other than OpenPGP
//                       and SSH ("unsupported signature type: x509|unknown")
//   PermissionDenied    no key of the Secret verifies the signature (unknown
//                       signer, altered object, expired or revoked key,
//                       SSH signature outside the "git" namespace or not
//                       decodable)
//   InvalidArgument     no OpenPGP key ring (no ".sshpub" value, for an
//                       SSH signature) in the Secret can be read (the
//                       message names the first bad data key), or the
//                       Secret has no key of the signature's type
//   NotFound            no such repository or commit
//   InvalidArgument     malformed commit_sha
//   Unavailable         gpg or ssh-keygen cannot be run
//   Internal            local failures (temp dir, libgit2)
absl::StatusOr<VerifiedSignature> VerifyCommit(const std::string& git_dir,
                                               const std::string& commit_sha,
                                               const VerificationKeys& secret_data);

// Verifies the signature of the annotated tag `tag` ("v1.0.0" or
// "refs/tags/v1.0.0") in the repository at `git_dir`: the tag object itself,
// not the commit it points to. Same codes and messages as VerifyCommit,
// with "signature verification of tag '<name>@<tag id>' failed: unable to
// verify Git tag: ..." ("...: unable to verify Git tag SSH signature: ..."
// for SSH), plus:
//   FailedPrecondition  lightweight tag or annotated tag without signature:
//                       "cannot verify signature of tag '<name>' since it is
//                       not signed" (Flux: '<name>' for a lightweight tag,
//                       '<name>@<tag id>' for an annotated one)
//   NotFound            no such tag
absl::StatusOr<VerifiedSignature> VerifyTag(const std::string& git_dir, const std::string& tag,
                                            const VerificationKeys& secret_data);

// SourceVerified condition reasons that Flux uses (besides "Succeeded").
inline constexpr char kReasonInvalidVerificationMode[] = "InvalidVerificationMode";
inline constexpr char kReasonInvalidGitObject[] = "InvalidGitObject";
inline constexpr char kReasonInvalidTagSignature[] = "InvalidTagSignature";
inline constexpr char kReasonInvalidCommitSignature[] = "InvalidCommitSignature";
inline constexpr char kReasonVerificationSucceeded[] = "Succeeded";

// What Flux records after verifying a fetched revision.
struct SourceVerification {
  // OK when verified; otherwise the error (codes as above; InvalidArgument
  // with reason InvalidVerificationMode when a tag must be verified but the
  // revision was not fetched through a tag).
  absl::Status status;
  // SourceVerified reason: kReasonVerificationSucceeded or one of the above.
  std::string reason;
  // SourceVerified message. On success, Flux's
  //   "verified signature of\n\t- tag '<name>@<id>' with key '<key>'"
  //   "\n\t- commit '<sha>' with key '<key>'"
  // (tag line for Tag/TagAndHEAD, commit line for HEAD/TagAndHEAD); on
  // failure status.message().
  std::string message;
  // Flux stalls (no retry) only on InvalidVerificationMode; every other
  // failure is retried with backoff, since the Secret or the remote may
  // change.
  bool stalled = false;
};

// Flux's verifySignature for a fetched revision: with a Tag mode, first the
// tag `tag_ref` (the fetched ref, e.g. "refs/tags/v1.0.0"; empty when the
// revision was not fetched through a tag: spec.ref.tag, spec.ref.semver or
// spec.ref.name refs/tags/...), then, with a HEAD mode, commit `commit_sha`.
// Stops at the first failure.
SourceVerification VerifySource(const std::string& git_dir, VerificationMode mode,
                                const std::string& commit_sha, const std::string& tag_ref,
                                const VerificationKeys& secret_data);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_VERIFY_VERIFY_H_
