#include "source-controller/controller/reconciler.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "source-controller/artifact/ignore.h"
#include "source-controller/artifact/packer.h"

namespace gitops::source {
namespace fs = std::filesystem;

namespace {

constexpr char kDurationMetric[] = "gotk_reconcile_duration_seconds";
constexpr char kConditionMetric[] = "gotk_reconcile_condition";

std::string GitReason(const absl::Status& s) {
  if (absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s)) return kAuthenticationFailedReason;
  if (absl::IsInvalidArgument(s)) return kURLInvalidReason;
  return kGitOperationFailedReason;
}

}  // namespace

SourceKey KeyOf(const GitRepository& repo) {
  return SourceKey{kGitRepositoryKind, repo.namespace_name, repo.name};
}

GitRepositoryReconciler::GitRepositoryReconciler(ReconcilerDeps deps, ReconcilerOptions options)
    : deps_(deps), options_(std::move(options)) {
  auto& m = common::Metrics::Global();
  m.DefineHistogram(kDurationMetric,
                    "The duration in seconds of a GitOps Toolkit resource reconciliation.",
                    common::ReconcileDurationBuckets());
  m.DefineGauge(kConditionMetric,
                "The current condition status of a GitOps Toolkit resource reconciliation.");
}

std::string GitRepositoryReconciler::ArtifactUrl(const std::string& path) const {
  return absl::StrCat(options_.url_scheme, "://", options_.advertised_address, "/", path);
}

absl::Status GitRepositoryReconciler::Fail(GitRepository& repo, const absl::Status& error,
                                           absl::string_view condition, absl::string_view reason,
                                           absl::Time now) {
  std::string message(error.message());
  auto& conds = repo.status.conditions;
  SetCondition(conds, MakeCondition(condition, "True", reason, message, repo.generation), now);
  SetCondition(conds, MakeCondition(kReadyCondition, "False", reason, message, repo.generation),
               now);
  if (absl::IsInvalidArgument(error)) {
    // The spec must change before a retry can help (Flux marks it Stalled).
    SetCondition(conds, MakeCondition(kStalledCondition, "True", reason, message, repo.generation),
                 now);
    RemoveCondition(conds, kReconcilingCondition);
  } else {
    RemoveCondition(conds, kStalledCondition);
  }
  repo.status.observed_generation = repo.generation;
  common::LogError("reconciliation failed", {{"kind", kGitRepositoryKind},
                                             {"namespace", repo.namespace_name},
                                             {"name", repo.name},
                                             {"reason", reason},
                                             {"error", message}});
  return error;
}

absl::Status GitRepositoryReconciler::Reconcile(GitRepository& repo,
                                                const GitCredentials& credentials, absl::Time now) {
  absl::Time started = absl::Now();
  struct Record {
    GitRepository& repo;
    absl::Time started;
    ~Record() {
      common::MetricLabels labels{
          {"kind", kGitRepositoryKind}, {"name", repo.name}, {"namespace", repo.namespace_name}};
      common::Metrics::Global().Observe(kDurationMetric, labels,
                                        absl::ToDoubleSeconds(absl::Now() - started));
      const Condition* ready = FindCondition(repo.status.conditions, kReadyCondition);
      for (const char* st : {"True", "False", "Unknown"}) {
        common::MetricLabels l{{"kind", kGitRepositoryKind},
                               {"name", repo.name},
                               {"namespace", repo.namespace_name},
                               {"type", kReadyCondition},
                               {"status", st}};
        common::Metrics::Global().Set(kConditionMetric, l, ready && ready->status == st ? 1 : 0);
      }
    }
  } record{repo, started};

  if (repo.spec.suspend) return absl::OkStatus();

  GitFetchOptions fetch;
  fetch.url = repo.spec.url;
  fetch.ref = repo.spec.ref;
  fetch.credentials = credentials;
  fetch.timeout = repo.spec.timeout;

  // Step 1: the cheap remote check.
  auto remote = deps_.git->ResolveRemote(fetch);
  if (!remote.ok()) {
    return Fail(repo, remote.status(), kFetchFailedCondition, GitReason(remote.status()), now);
  }

  // Step 2: nothing moved (the revision names the ref and the commit), the
  // ignore rules are the ones the artifact was built with, and it is still
  // stored: no download, no repack (Flux's rule, and it survives a restart
  // because both live in status).
  const SourceKey key = KeyOf(repo);
  if (repo.status.artifact && repo.status.artifact->revision == remote->revision &&
      repo.status.observed_ignore == repo.spec.ignore) {
    auto reader = deps_.storage->Open(key, repo.status.artifact->digest);
    if (reader.ok()) {
      std::string msg = absl::StrCat("stored artifact for revision '", remote->revision, "'");
      auto& conds = repo.status.conditions;
      SetCondition(conds,
                   MakeCondition(kReadyCondition, "True", kSucceededReason, msg, repo.generation),
                   now);
      SetCondition(conds,
                   MakeCondition(kArtifactInStorageCondition, "True", kSucceededReason, msg,
                                 repo.generation),
                   now);
      for (const char* t : {kFetchFailedCondition, kReconcilingCondition, kStalledCondition,
                            kArtifactOutdatedCondition, kStorageOperationFailedCondition}) {
        RemoveCondition(conds, t);
      }
      repo.status.observed_generation = repo.generation;
      Publish(repo);
      common::LogDebug("no changes since last reconciliation", {{"kind", kGitRepositoryKind},
                                                                {"namespace", repo.namespace_name},
                                                                {"name", repo.name},
                                                                {"revision", remote->revision}});
      return absl::OkStatus();
    }
  }

  // Step 3: fetch incrementally into the per-source cache and check out.
  fs::path cache =
      fs::path(options_.cache_root) / "gitrepository" / repo.namespace_name / repo.name;
  std::error_code ec;
  fs::create_directories(options_.work_root, ec);
  std::string work_template = (fs::path(options_.work_root) / "checkout-XXXXXX").string();
  char* work = ::mkdtemp(work_template.data());
  if (work == nullptr) {
    return Fail(repo, absl::InternalError(absl::StrCat("create work dir in ", options_.work_root)),
                kStorageOperationFailedCondition, kStorageOperationFailedReason, now);
  }
  std::string checkout = (fs::path(work) / "tree").string();
  struct RemoveWork {
    std::string dir;
    ~RemoveWork() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } remove_work{work};

  auto fetched = deps_.git->FetchAndCheckout(fetch, cache.string(), checkout);
  if (!fetched.ok()) {
    return Fail(repo, fetched.status(), kFetchFailedCondition, GitReason(fetched.status()), now);
  }

  // Step 4: pack deterministically into a temp file and commit it atomically.
  auto ignore = LoadIgnoreRules(checkout, repo.spec.ignore);
  if (!ignore.ok()) {
    return Fail(repo, ignore.status(), kStorageOperationFailedCondition,
                kStorageOperationFailedReason, now);
  }
  auto temp = deps_.storage->NewTempPath(key);
  if (!temp.ok()) {
    return Fail(repo, temp.status(), kStorageOperationFailedCondition,
                kStorageOperationFailedReason, now);
  }
  auto packed = PackDirectory(checkout, *ignore, *temp);
  if (!packed.ok()) {
    fs::remove(*temp, ec);
    return Fail(repo, packed.status(), kStorageOperationFailedCondition,
                kStorageOperationFailedReason, now);
  }
  auto stored = deps_.storage->Commit(key, *temp, packed->digest);
  if (!stored.ok()) {
    fs::remove(*temp, ec);
    return Fail(repo, stored.status(), kStorageOperationFailedCondition,
                kStorageOperationFailedReason, now);
  }

  // Step 5: record, announce, collect garbage.
  ArtifactStatus artifact;
  artifact.path = stored->path;
  artifact.url = ArtifactUrl(stored->path);
  artifact.revision = fetched->revision;
  artifact.digest = stored->digest;
  artifact.size = stored->size;
  artifact.last_update_time = now;
  repo.status.artifact = artifact;
  repo.status.observed_ignore = repo.spec.ignore;
  repo.status.observed_generation = repo.generation;
  std::string msg = absl::StrCat("stored artifact for revision '", fetched->revision, "'");
  auto& conds = repo.status.conditions;
  SetCondition(
      conds,
      MakeCondition(kArtifactInStorageCondition, "True", kSucceededReason, msg, repo.generation),
      now);
  SetCondition(conds,
               MakeCondition(kReadyCondition, "True", kSucceededReason, msg, repo.generation), now);
  for (const char* t : {kFetchFailedCondition, kReconcilingCondition, kStalledCondition,
                        kArtifactOutdatedCondition, kStorageOperationFailedCondition}) {
    RemoveCondition(conds, t);
  }
  Publish(repo);
  auto removed = deps_.storage->GarbageCollect(key, stored->digest, options_.retention_records,
                                               options_.retention_ttl, now);
  if (!removed.ok()) {
    common::LogError("garbage collection failed", {{"kind", kGitRepositoryKind},
                                                   {"namespace", repo.namespace_name},
                                                   {"name", repo.name},
                                                   {"error", removed.status().message()}});
  }
  common::LogInfo(msg, {{"kind", kGitRepositoryKind},
                        {"namespace", repo.namespace_name},
                        {"name", repo.name},
                        {"revision", fetched->revision},
                        {"digest", stored->digest},
                        {"size", std::to_string(stored->size)},
                        {"files", std::to_string(packed->files)},
                        {"received_objects", std::to_string(fetched->received_objects)}});
  return absl::OkStatus();
}

void GitRepositoryReconciler::Publish(const GitRepository& repo) {
  if (!repo.status.artifact) return;
  const ArtifactStatus& a = *repo.status.artifact;
  v1::Artifact msg;
  msg.mutable_source()->set_kind(kGitRepositoryKind);
  msg.mutable_source()->set_namespace_(repo.namespace_name);
  msg.mutable_source()->set_name(repo.name);
  msg.set_revision(a.revision);
  msg.set_digest(a.digest);
  msg.set_size(a.size);
  msg.set_path(a.path);
  msg.set_url(a.url);
  msg.mutable_last_update_time()->set_seconds(absl::ToUnixSeconds(a.last_update_time));
  deps_.hub->PublishUpdated(msg);
}

bool GitRepositoryReconciler::Restore(const GitRepository& repo) {
  if (!repo.status.artifact) return false;
  auto reader = deps_.storage->Open(KeyOf(repo), repo.status.artifact->digest);
  if (!reader.ok()) return false;
  Publish(repo);
  return true;
}

absl::Status GitRepositoryReconciler::Delete(const GitRepository& repo) {
  v1::SourceReference ref;
  ref.set_kind(kGitRepositoryKind);
  ref.set_namespace_(repo.namespace_name);
  ref.set_name(repo.name);
  deps_.hub->PublishDeleted(ref);
  std::error_code ec;
  fs::remove_all(fs::path(options_.cache_root) / "gitrepository" / repo.namespace_name / repo.name,
                 ec);
  return deps_.storage->RemoveAll(KeyOf(repo));
}

}  // namespace gitops::source
