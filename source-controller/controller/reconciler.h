// Reconciles one GitRepository the way Flux's GitRepositoryReconciler does:
// storage check, source (secrets, includes, cheap remote check, incremental
// fetch, sparse checkout, signature verification), includes copied in,
// deterministic pack, atomic store, GC, Flux's conditions and summary, and a
// broadcast on the artifact stream.
#ifndef GITOPS_SOURCE_CONTROLLER_CONTROLLER_RECONCILER_H_
#define GITOPS_SOURCE_CONTROLLER_CONTROLLER_RECONCILER_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/controller/conditions.h"
#include "source-controller/artifact/storage.h"
#include "source-controller/controller/git_repository.h"
#include "source-controller/git/git_fetcher.h"
#include "source-controller/grpc/event_hub.h"

namespace gitops::source {

// Flux's condition types and reasons.
// The generic ones (Ready, Reconciling, Stalled, Succeeded) come from the
// controller runtime.
using common::kProgressingReason;
using common::kProgressingWithRetryReason;
using common::kReadyCondition;
using common::kReconcilingCondition;
using common::kStalledCondition;
using common::kSucceededReason;
inline constexpr char kFetchFailedCondition[] = "FetchFailed";
inline constexpr char kArtifactInStorageCondition[] = "ArtifactInStorage";
inline constexpr char kArtifactOutdatedCondition[] = "ArtifactOutdated";
inline constexpr char kIncludeUnavailableCondition[] = "IncludeUnavailable";
inline constexpr char kStorageOperationFailedCondition[] = "StorageOperationFailed";
inline constexpr char kSourceVerifiedCondition[] = "SourceVerified";
inline constexpr char kGitOperationFailedReason[] = "GitOperationFailed";
inline constexpr char kAuthenticationFailedReason[] = "AuthenticationFailed";
inline constexpr char kURLInvalidReason[] = "URLInvalid";
inline constexpr char kArchiveOperationFailedReason[] = "ArchiveOperationFailed";
inline constexpr char kDirCreationFailedReason[] = "DirectoryCreationFailed";
inline constexpr char kNewRevisionReason[] = "NewRevision";
inline constexpr char kIncludeChangeReason[] = "IncludeChange";
inline constexpr char kVerificationErrorReason[] = "VerificationError";

struct ReconcilerOptions {
  // Cached bare repositories live under <cache_root>/<kind>/<ns>/<name>.
  std::string cache_root;
  // Temporary checkouts.
  std::string work_root;
  // host[:port] clients use to reach the artifacts: the artifact URL is
  // "<url_scheme>://<advertised_address>/<path>". "http" when the plain HTTP
  // file server (Flux's --storage-addr) runs, "grpc" otherwise.
  std::string advertised_address;
  std::string url_scheme = "grpc";
  // Refuse to store an artifact whose files add up to more than this many
  // bytes (before compression: file contents plus kCheckoutEntryBytes per
  // file, directory or symlink); 0 means no limit. Enforced while checking
  // out (nothing past it is written). A refused revision's git cache is
  // removed, and retries fail fast (one remote check) until the upstream
  // revision, the spec or the included artifacts change.
  int64_t max_artifact_size = 0;
  int retention_records = 2;
  absl::Duration retention_ttl = absl::Seconds(60);
  // How long a GitRepository waits for an included one (--requeue-dependency).
  absl::Duration requeue_dependency = absl::Seconds(30);
};

struct ReconcilerDeps {
  GitFetcher* git = nullptr;
  ArtifactStorage* storage = nullptr;
  ArtifactEventHub* hub = nullptr;
};

// What the caller read from the API for one run. Failures are reported with
// Flux's conditions, in Flux's order.
struct ReconcileInputs {
  // spec.secretRef (NotFound / other errors carry Flux's message).
  absl::StatusOr<GitCredentials> credentials = GitCredentials{};
  // spec.proxySecretRef.
  absl::StatusOr<GitProxy> proxy = GitProxy{};
  // spec.verify.secretRef's data.
  absl::StatusOr<std::map<std::string, std::string>> verify_keys =
      std::map<std::string, std::string>{};
  // One entry per spec.include, in order: the included GitRepository's
  // artifact; NotFound when the object does not exist, FailedPrecondition
  // when it has no artifact yet.
  std::vector<absl::StatusOr<ArtifactStatus>> includes;
  // reconcile.fluxcd.io/requestedAt ("" when absent).
  std::string requested_at;
  // Writes the in-progress status (Reconciling=True, Ready=Unknown) so
  // `kubectl get -w` sees progress before a long fetch. May be empty.
  std::function<absl::Status(const GitRepository&)> progress;
  // Announce the artifact on the stream from within Reconcile. The
  // Kubernetes runner turns this off and calls Publish once the status is
  // written, so a subscriber never hears of an artifact the API does not
  // show yet.
  bool publish = true;
};

// Where a runner finds what spec refers to, both in repo's namespace.
struct InputSources {
  // A Secret's decoded data; errors carry Flux's "failed to get secret" text.
  std::function<absl::StatusOr<std::map<std::string, std::string>>(const std::string& name)> secret;
  // The GitRepository `name`'s status; NotFound (with a message naming it)
  // when it does not exist.
  std::function<absl::StatusOr<GitRepositoryStatus>(const std::string& name)> repository;
};

// The credentials, proxy, verification keys and included artifacts for one
// run of `repo`, read through `sources` (requested_at and progress are left
// to the caller).
ReconcileInputs GatherInputs(const GitRepository& repo, const InputSources& sources);

// How a run ended, as Flux's runtime classifies it.
enum class ReconcileKind {
  kSuccess,  // artifact up to date (new, or nothing changed)
  kFailed,   // retry with backoff
  kWaiting,  // waiting on another object: retry after `requeue_after`
  kStalled,  // the spec must change first: no retry
};

struct ReconcileOutcome {
  ReconcileKind kind = ReconcileKind::kSuccess;
  // The failure; OK on success.
  absl::Status error;
  // Flux's reason for the failure (the Warning event's reason).
  std::string reason;
  absl::Duration requeue_after = absl::ZeroDuration();
  // The upstream commit's subject (Flux's ShortMessage); empty when the run
  // fetched nothing.
  std::string commit_subject;
  bool ok() const { return kind == ReconcileKind::kSuccess; }
};

// Thread-safe for different objects; one object must not be reconciled by
// two threads at once.
class GitRepositoryReconciler {
 public:
  GitRepositoryReconciler(ReconcilerDeps deps, ReconcilerOptions options);

  // Brings `repo.status` up to date with the remote, conditions summarized
  // into Ready as Flux does.
  ReconcileOutcome Reconcile(GitRepository& repo, const ReconcileInputs& inputs, absl::Time now);
  // The same with only credentials; returns the failure (OK on success).
  absl::Status Reconcile(GitRepository& repo, const GitCredentials& credentials, absl::Time now);

  // Removes the source's artifacts and cache and announces DELETED. Never
  // follows a symlink in storage or the cache (a symlinked level is refused,
  // FailedPrecondition, and nothing behind it removed).
  absl::Status Delete(const GitRepository& repo);

  // The GitRepositories that have a directory in storage (symlinks and
  // other non-directories are skipped and reported, never followed).
  absl::StatusOr<SourceListing> StoredSources() const;

  // Announces an artifact restored from persisted status (after a restart),
  // if its file is still in storage. Returns whether it was.
  bool Restore(const GitRepository& repo);

  // The artifact's URL, "<scheme>://<advertised>/<path>".
  std::string ArtifactUrl(const std::string& path) const;

  // Announces repo.status.artifact on the stream (UPDATED; the hub drops
  // repeats of the current digest). No-op without an artifact.
  void Publish(const GitRepository& repo);

  const ReconcilerOptions& options() const { return options_; }

 private:
  class Run;

  // A revision refused for size (--artifact-max-size), remembered so that
  // a retry with the same upstream revision fails with the same message
  // after one remote check, instead of fetching and checking out again.
  struct Refusal {
    int64_t generation = 0;
    std::string includes;  // the included artifacts' digests
    std::string revision;
    std::string message;
  };
  std::optional<Refusal> FindRefusal(const SourceKey& key) const;
  void SetRefusal(const SourceKey& key, std::optional<Refusal> refusal);

  ReconcilerDeps deps_;
  ReconcilerOptions options_;
  mutable absl::Mutex refused_mu_;
  std::map<std::string, Refusal> refused_ ABSL_GUARDED_BY(refused_mu_);
};

// "GitRepository/<ns>/<name>" key for storage and events.
SourceKey KeyOf(const GitRepository& repo);

// Flux's commit.ShortMessage: the subject line, cut at 50 characters + "...".
std::string CommitSubject(absl::string_view message);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_CONTROLLER_RECONCILER_H_
