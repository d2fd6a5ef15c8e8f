// SSH signature (SSHSIG, `git -c gpg.format=ssh`) verification with
// OpenSSH's `ssh-keygen -Y verify`. No OpenSSH code or header here: the
// signature and the keys are parsed in ssh.cc, ssh-keygen runs as a child
// process.
#ifndef GITOPS_SOURCE_CONTROLLER_VERIFY_SSH_H_
#define GITOPS_SOURCE_CONTROLLER_VERIFY_SSH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

// One authorized_keys-formatted value, e.g. one ".sshpub" data entry of a
// Secret: one public key per line ("[options] <type> <base64> [comment]");
// blank lines and lines starting with '#' are skipped.
struct AuthorizedKeys {
  // Where it came from (the Secret data key); only used in messages.
  std::string name;
  std::string text;
};

// Verifies `signature`, an armored SSH signature ("-----BEGIN SSH
// SIGNATURE-----") in the "git" namespace, over `payload` with the keys of
// `authorized_keys`, like Flux's VerifySSHSignature (fluxcd/pkg
// git/signature): a value with a line that cannot be parsed is skipped as a
// whole, and only reported when no value could be parsed at all.
//
// Returns the SHA256 fingerprint of the key that verified the signature,
// "SHA256:<unpadded base64>" (what `ssh-keygen -l` prints and Flux reports).
//
// The key the signature names is matched by fingerprint first; only a
// matching key is handed to `ssh-keygen -Y verify` (as the single line of an
// allowed_signers file for principal "flux", in a fresh 0700 directory under
// $TMPDIR or /tmp that is removed before returning; the payload is its
// stdin). Thread-safe; spawns ssh-keygen at most once, no shell.
//
// Errors (messages follow Flux's wording, without key material):
//   InvalidArgument   no value could be parsed ("unable to parse authorized
//                     keys '<name>': unable to parse authorized key: ssh: no
//                     key found"), or `authorized_keys` is empty
//   PermissionDenied  no key verifies the signature ("unable to verify
//                     payload with any of the given authorized keys: no
//                     matching key" followed by Flux's joined causes, one per
//                     line: "public key does not match", "namespace does not
//                     match", "ssh: signature did not verify"), or the
//                     signature cannot be decoded ("unable to unarmor SSH
//                     signature: ...")
//   Unavailable       ssh-keygen could not be run
//   Internal          temp directory or other local failures
absl::StatusOr<std::string> VerifySshSignature(absl::string_view signature,
                                               absl::string_view payload,
                                               const std::vector<AuthorizedKeys>& authorized_keys);

// The SHA256 fingerprint of the public key blob `blob` (raw, not base64):
// "SHA256:" + unpadded base64 of its SHA-256.
std::string SshFingerprint(absl::string_view blob);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_VERIFY_SSH_H_
