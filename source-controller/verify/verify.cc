#include "source-controller/verify/verify.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "source-controller/verify/git_objects.h"
#include "source-controller/verify/openpgp.h"
#include "source-controller/verify/ssh.h"

namespace gitops::source {
namespace {

// Flux's Secret key suffixes (source-controller gitrepository_controller.go).
constexpr absl::string_view kPgpSuffix = ".asc";
constexpr absl::string_view kSshSuffix = ".sshpub";

// Flux's signature.GetSignatureType.
std::string SignatureType(absl::string_view signature) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(signature);
  if (absl::StartsWith(trimmed, "-----BEGIN PGP SIGNATURE-----")) return "openpgp";
  if (absl::StartsWith(trimmed, "-----BEGIN SSH SIGNATURE-----")) return "ssh";
  if (absl::StartsWith(trimmed, "-----BEGIN SIGNED MESSAGE-----")) return "x509";
  if (signature.empty()) return "empty";
  return "unknown";
}

// Flux's verifyGitObject + Commit/Tag.VerifyPGP: the key ID, or an error
// whose message is what Flux wraps after "signature verification of ...
// failed: ". `kind` is "commit" or "tag".
absl::StatusOr<std::string> VerifyGitObject(const SignedGitObject& object, absl::string_view kind,
                                            const VerificationKeys& secret_data) {
  std::vector<ArmoredKeyRing> key_rings;
  std::vector<AuthorizedKeys> authorized_keys;
  for (const auto& [name, value] : secret_data) {
    if (absl::EndsWith(name, kSshSuffix)) {
      authorized_keys.push_back({name, value});
    } else {
      key_rings.push_back({name, value});
    }
  }
  const std::string type = SignatureType(object.signature);
  if (type == "openpgp") {
    if (key_rings.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("PGP signature detected but no PGP public keys found in secret (keys with ",
                       kPgpSuffix, " suffix)"));
    }
    absl::StatusOr<std::string> key_id =
        VerifyOpenPgpSignature(object.signature, object.payload, key_rings);
    if (!key_id.ok()) {
      return absl::Status(key_id.status().code(), absl::StrCat("unable to verify Git ", kind, ": ",
                                                               key_id.status().message()));
    }
    return key_id;
  }
  if (type == "ssh") {
    if (authorized_keys.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SSH signature detected but no SSH public keys found in secret (keys with ",
                       kSshSuffix, " suffix)"));
    }
    absl::StatusOr<std::string> fingerprint =
        VerifySshSignature(object.signature, object.payload, authorized_keys);
    if (!fingerprint.ok()) {
      return absl::Status(fingerprint.status().code(),
                          absl::StrCat("unable to verify Git ", kind,
                                       " SSH signature: ", fingerprint.status().message()));
    }
    return fingerprint;
  }
  return absl::FailedPreconditionError(absl::StrCat("unsupported signature type: ", type));
}

// A verification step as Flux records it.
struct Step {
  absl::Status status;
  std::string reason;
  VerifiedSignature verified;
};

Step Fail(absl::Status status, std::string reason) {
  return Step{std::move(status), std::move(reason), {}};
}

absl::Status Wrap(absl::string_view kind, absl::string_view display, const absl::Status& cause) {
  return absl::Status(cause.code(), absl::StrCat("signature verification of ", kind, " '", display,
                                                 "' failed: ", cause.message()));
}

Step VerifyTagStep(const std::string& git_dir, const std::string& tag,
                   const VerificationKeys& secret_data) {
  absl::StatusOr<SignedGitObject> object = ReadGitTag(git_dir, tag);
  if (!object.ok()) {
    std::string name(absl::StripPrefix(tag, "refs/tags/"));
    return Fail(Wrap("tag", name, object.status()), kReasonInvalidTagSignature);
  }
  if (object->lightweight_tag || object->signature.empty()) {
    return Fail(
        absl::FailedPreconditionError(absl::StrCat("cannot verify signature of tag '",
                                                   object->display, "' since it is not signed")),
        kReasonInvalidGitObject);
  }
  absl::StatusOr<std::string> key_id = VerifyGitObject(*object, "tag", secret_data);
  if (!key_id.ok()) {
    return Fail(Wrap("tag", object->display, key_id.status()), kReasonInvalidTagSignature);
  }
  return Step{absl::OkStatus(), kReasonVerificationSucceeded, {object->display, *key_id}};
}

Step VerifyCommitStep(const std::string& git_dir, const std::string& commit_sha,
                      const VerificationKeys& secret_data) {
  absl::StatusOr<SignedGitObject> object = ReadGitCommit(git_dir, commit_sha);
  if (!object.ok()) {
    return Fail(Wrap("commit", commit_sha, object.status()), kReasonInvalidCommitSignature);
  }
  absl::StatusOr<std::string> key_id = VerifyGitObject(*object, "commit", secret_data);
  if (!key_id.ok()) {
    return Fail(Wrap("commit", object->display, key_id.status()), kReasonInvalidCommitSignature);
  }
  return Step{absl::OkStatus(), kReasonVerificationSucceeded, {object->display, *key_id}};
}

}  // namespace

absl::StatusOr<VerificationMode> ParseVerificationMode(absl::string_view mode) {
  if (mode.empty() || mode == "HEAD" || mode == "head") return VerificationMode::kHead;
  if (mode == "Tag") return VerificationMode::kTag;
  if (mode == "TagAndHEAD") return VerificationMode::kTagAndHead;
  return absl::InvalidArgumentError(absl::StrCat("spec.verify.mode: unsupported value '", mode,
                                                 "': must be one of HEAD, Tag, TagAndHEAD"));
}

absl::StatusOr<VerifiedSignature> VerifyCommit(const std::string& git_dir,
                                               const std::string& commit_sha,
                                               const VerificationKeys& secret_data) {
  Step step = VerifyCommitStep(git_dir, commit_sha, secret_data);
  if (!step.status.ok()) return step.status;
  return step.verified;
}

absl::StatusOr<VerifiedSignature> VerifyTag(const std::string& git_dir, const std::string& tag,
                                            const VerificationKeys& secret_data) {
  Step step = VerifyTagStep(git_dir, tag, secret_data);
  if (!step.status.ok()) return step.status;
  return step.verified;
}

SourceVerification VerifySource(const std::string& git_dir, VerificationMode mode,
                                const std::string& commit_sha, const std::string& tag_ref,
                                const VerificationKeys& secret_data) {
  SourceVerification out;
  auto fail = [&out](Step step) {
    out.message = std::string(step.status.message());
    out.status = std::move(step.status);
    out.reason = std::move(step.reason);
    return out;
  };
  std::string message;
  if (mode == VerificationMode::kTag || mode == VerificationMode::kTagAndHead) {
    // Without a tag ref there is no tag object to verify; no retry can fix
    // that, only a spec change (Flux stalls).
    if (tag_ref.empty()) {
      out.stalled = true;
      return fail(
          Fail(absl::InvalidArgumentError(
                   "cannot verify tag object's signature if a tag reference is not specified"),
               kReasonInvalidVerificationMode));
    }
    Step tag = VerifyTagStep(git_dir, tag_ref, secret_data);
    if (!tag.status.ok()) return fail(std::move(tag));
    absl::StrAppend(&message, "verified signature of\n\t- tag '", tag.verified.object,
                    "' with key '", tag.verified.key_id, "'");
  }
  if (mode == VerificationMode::kHead || mode == VerificationMode::kTagAndHead) {
    Step commit = VerifyCommitStep(git_dir, commit_sha, secret_data);
    if (!commit.status.ok()) return fail(std::move(commit));
    absl::StrAppend(&message, message.empty() ? "verified signature of" : "", "\n\t- commit '",
                    commit.verified.object, "' with key '", commit.verified.key_id, "'");
  }
  out.status = absl::OkStatus();
  out.reason = kReasonVerificationSucceeded;
  out.message = std::move(message);
  return out;
}

}  // namespace gitops::source
