// OpenPGP detached-signature verification with GnuPG, through gpgme.
// No gpgme header here: the implementation is in openpgp.cc.
#ifndef GITOPS_SOURCE_CONTROLLER_VERIFY_OPENPGP_H_
#define GITOPS_SOURCE_CONTROLLER_VERIFY_OPENPGP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

// One ASCII-armored key ring, e.g. one data entry of a Secret.
struct ArmoredKeyRing {
  // Where it came from (the Secret data key); only used in messages.
  std::string name;
  // "-----BEGIN PGP PUBLIC KEY BLOCK-----..." (one or more keys).
  std::string armored;
};

// Verifies `signature`, an ASCII-armored detached OpenPGP signature, over
// `payload` with the keys of `key_rings`, like Flux's VerifyPGPSignature
// (fluxcd/pkg git/signature): a key ring that cannot be read is skipped, and
// is only reported when no key ring could be read at all.
//
// Returns the key ID of the primary key whose key or subkey made a good
// signature: 16 uppercase hex digits (go-crypto's KeyIdString). Expired or
// revoked keys and expired signatures do not count as good.
//
// Each call imports the keys into a private GnuPG home (a fresh 0700
// directory under $TMPDIR or /tmp, removed before returning), so calls never
// see each other's keys nor the user's keyring, and no gpg-agent is started.
// Thread-safe. Spawns gpg a few times (once per key ring, plus two).
//
// Errors (messages follow Flux's wording, lowercase, without key material):
//   InvalidArgument   no key ring could be read ("unable to read armored key
//                     ring '<name>': ..."), or `key_rings` is empty
//   PermissionDenied  no key verifies the signature: unknown key, tampered
//                     payload, bad or expired signature ("unable to verify
//                     payload with any of the given key rings: no matching
//                     key")
//   Unavailable       gpg could not be run (not installed, too old)
//   Internal          temp directory or other local failures
absl::StatusOr<std::string> VerifyOpenPgpSignature(absl::string_view signature,
                                                   absl::string_view payload,
                                                   const std::vector<ArmoredKeyRing>& key_rings);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_VERIFY_OPENPGP_H_
