// Reconciles one GitRepository: cheap remote check, incremental fetch only
// when the revision moved, deterministic pack, atomic store, GC, status and
// conditions, broadcast on the artifact stream.
#ifndef GITOPS_SOURCE_CONTROLLER_CONTROLLER_RECONCILER_H_
#define GITOPS_SOURCE_CONTROLLER_CONTROLLER_RECONCILER_H_

#include <string>

#include "absl/status/status.h"
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
using common::kReadyCondition;
using common::kReconcilingCondition;
using common::kStalledCondition;
using common::kSucceededReason;
inline constexpr char kFetchFailedCondition[] = "FetchFailed";
inline constexpr char kArtifactInStorageCondition[] = "ArtifactInStorage";
inline constexpr char kArtifactOutdatedCondition[] = "ArtifactOutdated";
inline constexpr char kStorageOperationFailedCondition[] = "StorageOperationFailed";
inline constexpr char kGitOperationFailedReason[] = "GitOperationFailed";
inline constexpr char kAuthenticationFailedReason[] = "AuthenticationFailed";
inline constexpr char kURLInvalidReason[] = "URLInvalid";
inline constexpr char kStorageOperationFailedReason[] = "StorageOperationFailed";
inline constexpr char kNewRevisionReason[] = "NewRevision";

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
  // bytes (before compression); 0 means no limit.
  int64_t max_artifact_size = 0;
  int retention_records = 2;
  absl::Duration retention_ttl = absl::Seconds(60);
};

struct ReconcilerDeps {
  GitFetcher* git = nullptr;
  ArtifactStorage* storage = nullptr;
  ArtifactEventHub* hub = nullptr;
};

// Thread-safe for different objects; one object must not be reconciled by
// two threads at once.
class GitRepositoryReconciler {
 public:
  GitRepositoryReconciler(ReconcilerDeps deps, ReconcilerOptions options);

  // Brings `repo.status` up to date with the remote. Conditions are set on
  // every path. Returns the error that made the run fail (its code says
  // whether retrying may help: InvalidArgument = the spec must change), OK on
  // success, including "nothing changed".
  absl::Status Reconcile(GitRepository& repo, const GitCredentials& credentials, absl::Time now);

  // Removes the source's artifacts and cache and announces DELETED.
  absl::Status Delete(const GitRepository& repo);

  // Announces an artifact restored from persisted status (after a restart),
  // if its file is still in storage. Returns whether it was.
  bool Restore(const GitRepository& repo);

  // The artifact's URL, "<scheme>://<advertised>/<path>".
  std::string ArtifactUrl(const std::string& path) const;

 private:
  absl::Status Fail(GitRepository& repo, const absl::Status& error, absl::string_view condition,
                    absl::string_view reason, absl::Time now);
  void Publish(const GitRepository& repo);

  ReconcilerDeps deps_;
  ReconcilerOptions options_;
};

// "GitRepository/<ns>/<name>" key for storage and events.
SourceKey KeyOf(const GitRepository& repo);

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_CONTROLLER_RECONCILER_H_
