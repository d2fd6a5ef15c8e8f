// Kubernetes mode: the GitRepository controller on the API server. An
// informer on source.toolkit.fluxcd.io/v1 gitrepositories feeds a work queue
// drained by N workers; each run follows Flux's GitRepositoryReconciler:
// deletion (finalizer) first, then the finalizer is added, suspend is
// honoured, the spec.secretRef Secret is read from the API, the shared
// GitRepositoryReconciler brings the status up to date, and the status
// subresource is patched once with the difference. Events carry Flux's
// reasons (NewArtifact, GitOperationFailed, AuthenticationFailed, ...).
#ifndef GITOPS_SOURCE_CONTROLLER_CONTROLLER_KUBE_RUNNER_H_
#define GITOPS_SOURCE_CONTROLLER_CONTROLLER_KUBE_RUNNER_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/controller/controller.h"
#include "common/controller/informer.h"
#include "common/controller/work_queue.h"
#include "common/kube/events.h"
#include "common/kube/kube_client.h"
#include "nlohmann/json.hpp"
#include "source-controller/controller/git_repository.h"
#include "source-controller/controller/reconciler.h"

namespace gitops::source {

// Flux's finalizer on source objects (sourcev1.SourceFinalizer).
inline constexpr char kSourceFinalizer[] = "finalizers.fluxcd.io";
// Flux's "reconcile now" annotation (meta.ReconcileRequestAnnotation).
inline constexpr char kReconcileRequestAnnotation[] = "reconcile.fluxcd.io/requestedAt";
// Event reasons Flux's source-controller uses beyond the condition reasons.
inline constexpr char kNewArtifactReason[] = "NewArtifact";

struct KubeRunnerOptions {
  // Namespace to watch; empty watches all namespaces (--watch-all-namespaces).
  std::string watch_namespace;
  // Workers reconciling different objects at once (--concurrent).
  int workers = 2;
  // Field manager of status patches and the events' reporting component.
  std::string controller_name = "source-controller";
  // Start() fails when the first list does not arrive within this time.
  absl::Duration cache_sync_timeout = absl::Minutes(2);
  // Artifact storage root (--storage-path). When set, Start() deletes the
  // artifacts of GitRepositories that no longer exist in the watched
  // namespaces (deleted while no controller ran their finalizer).
  std::string storage_root;
  // When set and true, Start() stops waiting for the cache (Cancelled), so a
  // shutdown signal is not held up by an unreachable API server.
  const std::atomic<bool>* cancel = nullptr;
  // Retry delay for objects waiting on another source (--requeue-dependency;
  // reserved for spec.include).
  absl::Duration requeue_dependency = absl::Seconds(30);
  // Successful runs come back after spec.interval plus or minus up to this
  // percentage of it, so objects applied together do not poll together
  // (Flux's --interval-jitter-percentage).
  int interval_jitter_percent = 5;
};

// Thread-safe. Owns its informer, work queue and worker threads; Stop()
// joins them. Collaborators are borrowed and must outlive the runner.
class KubeGitRepositoryRunner {
 public:
  // `events` may be null (no Kubernetes Events).
  KubeGitRepositoryRunner(common::KubeClient& client, common::EventRecorder* events,
                          GitRepositoryReconciler* reconciler, KubeRunnerOptions options);
  ~KubeGitRepositoryRunner();
  KubeGitRepositoryRunner(const KubeGitRepositoryRunner&) = delete;
  KubeGitRepositoryRunner& operator=(const KubeGitRepositoryRunner&) = delete;

  // Starts the informer and waits for its first list (Unavailable after
  // options.cache_sync_timeout; Cancelled when
  // options.cancel is set meanwhile), announces the artifacts the listed objects'
  // status already records (so subscribers need not wait for a refetch),
  // then starts the workers. Call once.
  absl::Status Start();
  // Lets in-flight reconciles finish, then stops. Idempotent.
  void Stop();

  // One run for "namespace/name"; what the workers call. Public for tests.
  common::ReconcileResult ReconcileKey(const std::string& key);

 private:
  // What this process remembers about an object between runs.
  struct Memory {
    std::string uid;
    // The status as last written, to notice a cache that lags our writes.
    std::optional<nlohmann::json> written_status;
  };

  // The object to reconcile: the cached copy, or a live read when the cache
  // has not caught up with our last status write. nullopt when gone.
  absl::StatusOr<std::optional<nlohmann::json>> Load(const std::string& key);
  // Deletes the stored artifacts (and git cache) of every GitRepository in
  // storage that the synced cache does not have.
  void CollectOrphans();
  common::ReconcileResult Finalize(const std::string& key, nlohmann::json& obj);
  // A Secret's decoded data; errors carry Flux's "failed to get secret" text.
  absl::StatusOr<std::map<std::string, std::string>> SecretData(const std::string& namespace_name,
                                                                const std::string& name);
  // The Secrets and included artifacts spec refers to.
  ReconcileInputs Inputs(const GitRepository& repo);
  // interval +- options_.interval_jitter_percent.
  absl::Duration Jittered(absl::Duration interval);
  // Writes `repo.status` to the status subresource as a merge patch against
  // `obj`, remembers it, and replaces `obj` with the server's answer.
  absl::Status WriteStatus(const std::string& key, nlohmann::json& obj, const GitRepository& repo);
  void Emit(const nlohmann::json& obj, absl::string_view type, absl::string_view reason,
            absl::string_view message, const std::map<std::string, std::string>& annotations = {});
  void OnUpdate(const nlohmann::json& old_obj, const nlohmann::json& new_obj);

  common::KubeClient& client_;
  common::EventRecorder* const events_;
  GitRepositoryReconciler* const reconciler_;
  const KubeRunnerOptions options_;

  common::WorkQueue queue_;
  std::unique_ptr<common::Informer> informer_;
  std::unique_ptr<common::Controller> controller_;

  absl::Mutex mu_;
  std::map<std::string, Memory> memory_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_CONTROLLER_KUBE_RUNNER_H_
