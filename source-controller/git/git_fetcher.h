// GitFetcher: resolves and fetches Git sources for GitRepository objects.
// Interface only; the libgit2 implementation is in libgit2_fetcher.h.
#ifndef GITOPS_SOURCE_CONTROLLER_GIT_GIT_FETCHER_H_
#define GITOPS_SOURCE_CONTROLLER_GIT_GIT_FETCHER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/time/time.h"

namespace gitops::source {

// Flux GitRepository spec.ref. Precedence (Flux docs): commit > name > semver >
// tag > branch; an empty ref means branch "master" (Flux's default). A commit
// combined with a branch must be reachable from that branch; combined with
// anything else, the other fields are ignored.
struct GitReference {
  std::string branch, tag, semver, name, commit;
};

// Credentials with Flux's Secret keys: username/password, bearerToken,
// ca.crt, identity (+ optional password for the key), known_hosts.
struct GitCredentials {
  std::string username, password, bearer_token, ca_pem, ssh_identity, ssh_identity_passphrase,
      ssh_known_hosts;
};

// An HTTP(S) proxy for the remote (Flux's proxySecretRef: address, username,
// password). Empty address: no proxy.
struct GitProxy {
  std::string address, username, password;
};

// What one checked-out entry costs on top of its contents under
// GitFetchOptions::max_checkout_bytes: its tar header in the artifact.
inline constexpr int64_t kCheckoutEntryBytes = 512;

struct GitFetchOptions {
  // http(s)://, ssh://, git://, file:// or an absolute local path.
  std::string url;
  GitReference ref;
  GitCredentials credentials;
  // Bound on the whole operation (connect, negotiation, transfer, and the
  // checkout of FetchAndCheckout).
  absl::Duration timeout = absl::Seconds(60);
  // Bound on what FetchAndCheckout writes into checkout_dir, counted as the
  // uncompressed artifact counts it: the contents of every file plus
  // kCheckoutEntryBytes for every entry (file, directory, symlink,
  // submodule), submodules included. 0: no bound. See FetchAndCheckout.
  int64_t max_checkout_bytes = 0;
  // spec.recurseSubmodules: check out submodules too (with the same
  // credentials), recursively.
  bool recurse_submodules = false;
  // spec.sparseCheckout: only these directories (relative to the root) are
  // written to checkout_dir; empty writes the whole tree.
  std::vector<std::string> sparse_checkout;
  // spec.proxySecretRef.
  GitProxy proxy;
};

// A resolved revision.
struct GitRevision {
  // Flux's format: "<branch>@sha1:<hex>", "<tag>@sha1:<hex>" (the peeled commit
  // of annotated tags), semver "<tag>@sha1:<hex>", name "<refname>@sha1:<hex>",
  // commit only "sha1:<hex>", branch+commit "<branch>@sha1:<commit>".
  std::string revision;
  // 40 lowercase hex digits of the commit.
  std::string commit;
  // The full ref resolved, e.g. refs/heads/main; empty for commit-only.
  std::string ref;
  // The commit's full message (FetchAndCheckout only; empty from
  // ResolveRemote).
  std::string message;
  // Objects and bytes received over the wire by this call (0 when nothing
  // had to be downloaded).
  int64_t received_objects = 0;
  int64_t received_bytes = 0;
};

// The payload under which a failed FetchAndCheckout carries the revision it
// had resolved (on ResourceExhausted), so a caller can remember what it
// refused without resolving again (the remote may have moved meanwhile).
inline constexpr char kRevisionPayload[] = "type.gitops.dev/source.GitRevision.revision";

// The revision carried by `status` (kRevisionPayload), or "".
inline std::string RevisionOfFailure(const absl::Status& status) {
  auto payload = status.GetPayload(kRevisionPayload);
  return payload ? std::string(*payload) : std::string();
}

// Fetches Git sources. Implementations are thread-safe for concurrent calls on
// different cache_dirs (calls on the same cache_dir are serialized).
//
// Error codes (messages are lowercase, name the URL without credentials and the
// ref, and never contain passwords, tokens or keys):
//   InvalidArgument    malformed URL, unsupported scheme, bad semver range,
//                      malformed commit
//   NotFound           missing branch, tag, ref name or commit; no tag matches
//                      the semver range
//   Unauthenticated    wrong or missing credentials
//   PermissionDenied   unknown or mismatched SSH host key; untrusted TLS
//                      certificate
//   Unavailable        unreachable host, connection refused, other transport
//                      errors
//   DeadlineExceeded   options.timeout passed (also while checking out)
//   ResourceExhausted  the checkout would exceed options.max_checkout_bytes
//
// The checkout options (FetchAndCheckout only):
//   recurse_submodules  every gitlink of the commit whose path has a url in
//       .gitmodules (at that commit) is fetched into its own cached bare
//       repository <cache_dir>/modules/<sha1 of url> (incremental, like the
//       main one) and its tree written at its path, recursively up to 10
//       levels (go-git's default depth, FailedPrecondition beyond). Relative
//       urls ("../x.git", "./x.git") resolve against the parent's url as git
//       does; scp-like urls become ssh://. The same credentials, proxy and
//       deadline are used. A gitlink without a .gitmodules url is left an
//       empty directory (as git and go-git do). A local (file) submodule url
//       is InvalidArgument unless the parent url is local too. Errors keep
//       their code and are prefixed "submodule '<path>' (<url>): ".
//       Without recurse_submodules, gitlinks are empty directories.
//   sparse_checkout  only the listed paths (directories or files, matched by
//       whole path components: "apps" selects apps/**, not apps-old/) and the
//       directories leading to them are written. Leading "./" and trailing
//       "/" are ignored; "." or "./" means the whole tree. A path that does
//       not exist in the commit is NotFound ("sparse checkout dir '<path as
//       given>' does not exist in repository", Flux's wording); an absolute
//       path or one with ".." is InvalidArgument. With recurse_submodules, a
//       path may reach into a submodule ("libs/sub/deploy").
//   proxy  (also for ResolveRemote) address http://, https:// or socks5://
//       (InvalidArgument otherwise, or for an ssh:// or git:// url through
//       an http(s) proxy: Flux too proxies ssh only through SOCKS5). http
//       urls go through an http proxy as absolute-form requests, https urls
//       through a CONNECT tunnel, any url through a SOCKS5 tunnel; proxy
//       credentials are sent up front (Basic, or SOCKS5 username/password).
//       A proxy that cannot be reached is Unavailable ("failed to connect to
//       proxy <address>"); a rejected or missing proxy password is
//       Unauthenticated ("proxy authentication failed: proxy <address>
//       rejected ..." / "proxy <address> requires authentication ...").
//       Local file urls ignore the proxy.
//   max_checkout_bytes  before writing anything, the tree's size is summed
//       from the object headers (no blob is inflated) and a tree over the
//       bound is refused; while writing (submodules included) every entry
//       is charged before it is written, so nothing past the bound ever
//       reaches the disk. A blob is never inflated unless it fits, so
//       memory is bounded by the bound too. ResourceExhausted, with a
//       message that names the bound and --artifact-max-size. Whatever was
//       written is left in checkout_dir for the caller to remove. The
//       status carries the resolved revision (RevisionOfFailure).
class GitFetcher {
 public:
  virtual ~GitFetcher() = default;

  // Cheap "did it move" check: lists the remote's refs on a detached remote
  // (no objects downloaded) and resolves options.ref against them. For a
  // commit-only ref (and branch+commit) returns the revision without network.
  virtual absl::StatusOr<GitRevision> ResolveRemote(const GitFetchOptions& options) = 0;

  // Fetches into the cached bare repository at cache_dir (created on first
  // use; later calls fetch only what is new, and nothing when the resolved
  // commit is already cached), resolves the ref, and writes the tree of that
  // commit into checkout_dir (created; must not exist or be empty). No .git in
  // checkout_dir.
  virtual absl::StatusOr<GitRevision> FetchAndCheckout(const GitFetchOptions& options,
                                                       const std::string& cache_dir,
                                                       const std::string& checkout_dir) = 0;
};

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_GIT_GIT_FETCHER_H_
