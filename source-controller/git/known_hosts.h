// SSH host key verification against OpenSSH known_hosts content (libgit2
// does not read known_hosts; the fetcher calls this from its
// certificate_check callback).
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_KNOWN_HOSTS_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_KNOWN_HOSTS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace gitops::source {

// Checks `key_blob` (the server's public key in SSH wire format, as in the
// base64 field of known_hosts) for `host`:`port` against `known_hosts`.
// Host fields may be plain names, "[host]:port", comma lists, "*"/"?"
// patterns, "!negations" and hashed "|1|salt|hash" entries. Lines marked
// @cert-authority are ignored; @revoked keys are refused.
// OK on a match; PermissionDenied "unknown host key" when no line names the
// host, "host key mismatch" when lines name it with other keys, also when
// `known_hosts` is empty.
absl::Status CheckKnownHosts(absl::string_view known_hosts, absl::string_view host, int port,
                             absl::string_view key_blob);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_KNOWN_HOSTS_H_
