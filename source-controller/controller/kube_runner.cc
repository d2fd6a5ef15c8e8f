#include "source-controller/controller/kube_runner.h"

#include <algorithm>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/controller/object_patch.h"
#include "common/controller/reconcile_metrics.h"
#include "common/log/log.h"
#include "common/runtime/memory_trim.h"
#include "common/yaml/yaml.h"

namespace gitops::source {
namespace {

using json = nlohmann::json;

const common::GroupVersionKind kGitRepositoryGvk{"source.toolkit.fluxcd.io", "v1",
                                                 kGitRepositoryKind};
const common::GroupVersionKind kSecretGvk{"", "v1", "Secret"};

// Flux annotates its events with the artifact's revision and digest.
constexpr char kRevisionAnnotation[] = "source.toolkit.fluxcd.io/revision";
constexpr char kDigestAnnotation[] = "source.toolkit.fluxcd.io/digest";
// Ready=False reason when the manifest cannot be used as it is (the CRD's
// validation normally catches this first; unsupported fields do not).
constexpr char kInvalidSpecReason[] = "InvalidSpec";

// status fields StatusToJson writes (and may leave out to clear them); any
// other field in status is carried over untouched.
const std::set<std::string> kModeledStatusFields = {"artifact",
                                                    "conditions",
                                                    "observedGeneration",
                                                    "observedIgnore",
                                                    "includedArtifacts",
                                                    "observedInclude",
                                                    "observedRecurseSubmodules",
                                                    "observedSparseCheckout",
                                                    "sourceVerificationMode",
                                                    "lastHandledReconcileAt"};

// The artifact's identity in an object's status, for noticing a new one.
std::string ArtifactIdentity(const json& obj) {
  return absl::StrCat(common::StringAt(obj, {"status", "artifact", "revision"}), " ",
                      common::StringAt(obj, {"status", "artifact", "digest"}));
}

int64_t Generation(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return 0;
  const json& meta = obj["metadata"];
  auto it = meta.find("generation");
  return it != meta.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string RequestedAt(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  return common::StringAt(obj, {"metadata", "annotations", kReconcileRequestAnnotation});
}

bool Suspended(const json& obj) {
  if (!obj.is_object() || !obj.contains("spec") || !obj["spec"].is_object()) return false;
  auto it = obj["spec"].find("suspend");
  return it != obj["spec"].end() && it->is_boolean() && it->get<bool>();
}

json StatusOf(const json& obj) {
  return obj.is_object() && obj.contains("status") ? obj["status"] : json::object();
}

// Just enough of the object for Delete and Restore: its name and status.
GitRepository Skeleton(const json& obj) {
  GitRepository repo;
  repo.namespace_name = common::StringAt(obj, {"metadata", "namespace"});
  repo.name = common::StringAt(obj, {"metadata", "name"});
  repo.generation = Generation(obj);
  repo.status = StatusFromJson(StatusOf(obj));
  return repo;
}

}  // namespace

KubeGitRepositoryRunner::KubeGitRepositoryRunner(common::KubeClient& client,
                                                 common::EventRecorder* events,
                                                 GitRepositoryReconciler* reconciler,
                                                 KubeRunnerOptions options)
    : client_(client),
      events_(events),
      reconciler_(reconciler),
      options_(std::move(options)),
      queue_(common::WorkQueueOptions{"gitrepository"}) {}

KubeGitRepositoryRunner::~KubeGitRepositoryRunner() { Stop(); }

absl::Status KubeGitRepositoryRunner::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopped_) return absl::FailedPreconditionError("runner already started");
    started_ = true;
  }
  common::InformerOptions informer_options;
  informer_options.gvk = kGitRepositoryGvk;
  informer_options.namespace_ = options_.watch_namespace;
  common::InformerHandlers handlers;
  handlers.on_add = [this](const json& obj) { queue_.Add(common::ObjectKey(obj)); };
  handlers.on_update = [this](const json& old_obj, const json& new_obj) {
    OnUpdate(old_obj, new_obj);
  };
  // A delete event still goes through ReconcileKey: it cleans up after an
  // object that vanished without our finalizer running.
  handlers.on_delete = [this](const json& obj) { queue_.Add(common::ObjectKey(obj)); };
  informer_ = std::make_unique<common::Informer>(client_, informer_options, handlers);
  informer_->Start();
  const absl::Time deadline = absl::Now() + options_.cache_sync_timeout;
  while (!informer_->WaitForSync(absl::Milliseconds(100))) {
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return absl::CancelledError("stopped while waiting for the GitRepository cache to sync");
    }
    if (absl::Now() < deadline) continue;
    return absl::UnavailableError(
        absl::StrCat("timed out after ", absl::FormatDuration(options_.cache_sync_timeout),
                     " waiting for the GitRepository cache to sync (are the CRDs installed?)"));
  }

  // Announce what the objects' status already records, before any refetch:
  // a restarted controller serves its subscribers at once.
  int restored = 0;
  for (const json& obj : informer_->List()) {
    if (reconciler_->Restore(Skeleton(obj))) ++restored;
  }
  if (!options_.storage_root.empty()) CollectOrphans();
  common::LogInfo("GitRepository cache synced",
                  {{"kind", kGitRepositoryKind},
                   {"namespace", options_.watch_namespace},
                   {"objects", std::to_string(informer_->Keys().size())},
                   {"restored_artifacts", std::to_string(restored)}});

  common::ControllerOptions controller_options;
  controller_options.name = "gitrepository";
  controller_options.workers = std::max(1, options_.workers);
  // The interval is jittered here (--interval-jitter-percentage), once.
  controller_options.requeue_jitter = 0;
  controller_ = std::make_unique<common::Controller>(
      controller_options, queue_, [this](const std::string& key) { return ReconcileKey(key); });
  controller_->Start();
  return absl::OkStatus();
}

void KubeGitRepositoryRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  queue_.ShutDown();
  if (controller_) controller_->Stop();  // in-flight reconciles finish first
  if (informer_) informer_->Stop();
}

void KubeGitRepositoryRunner::CollectOrphans() {
  // Storage lists only real directories: a symlink planted at the namespace
  // or name level is skipped, never followed (it once took a restart to
  // delete every sub-directory of wherever it pointed).
  auto listing = reconciler_->StoredSources();
  if (!listing.ok()) {
    common::LogError("cannot list stored artifacts for orphan collection",
                     {{"kind", kGitRepositoryKind}, {"error", listing.status().message()}});
    return;
  }
  for (const std::string& skipped : listing->skipped) {
    common::LogError("storage entry is not a directory; left alone",
                     {{"kind", kGitRepositoryKind}, {"path", skipped}});
  }
  for (const SourceKey& key : listing->sources) {
    if (!options_.watch_namespace.empty() && key.namespace_name != options_.watch_namespace) {
      continue;
    }
    if (informer_->Get(absl::StrCat(key.namespace_name, "/", key.name))) continue;
    GitRepository gone;
    gone.namespace_name = key.namespace_name;
    gone.name = key.name;
    absl::Status s = reconciler_->Delete(gone);
    common::LogInfo("deleted artifacts of a GitRepository that no longer exists",
                    {{"kind", kGitRepositoryKind},
                     {"namespace", key.namespace_name},
                     {"name", key.name},
                     {"error", s.message()}});
  }
}

void KubeGitRepositoryRunner::OnUpdate(const json& old_obj, const json& new_obj) {
  // Flux's predicates: a spec change (generation), a reconcile request, or
  // the start of deletion. Our own status writes change none of them.
  const bool deleting = !common::StringAt(new_obj, {"metadata", "deletionTimestamp"}).empty() &&
                        common::StringAt(old_obj, {"metadata", "deletionTimestamp"}).empty();
  if (Generation(old_obj) != Generation(new_obj) || RequestedAt(old_obj) != RequestedAt(new_obj) ||
      common::StringAt(old_obj, {"metadata", "uid"}) !=
          common::StringAt(new_obj, {"metadata", "uid"}) ||
      deleting) {
    queue_.Add(common::ObjectKey(new_obj));
  }
  // A new artifact rebuilds the GitRepositories that include this one (Flux
  // watches for the same with an index on spec.include).
  if (ArtifactIdentity(old_obj) != ArtifactIdentity(new_obj) &&
      !common::StringAt(new_obj, {"status", "artifact", "digest"}).empty()) {
    const std::string ns = common::StringAt(new_obj, {"metadata", "namespace"});
    const std::string name = common::StringAt(new_obj, {"metadata", "name"});
    for (const json& other : informer_->List()) {
      if (common::StringAt(other, {"metadata", "namespace"}) != ns) continue;
      const json* include = nullptr;
      if (other.contains("spec") && other["spec"].is_object() &&
          other["spec"].contains("include")) {
        include = &other["spec"]["include"];
      }
      if (include == nullptr || !include->is_array()) continue;
      for (const json& inc : *include) {
        if (common::StringAt(inc, {"repository", "name"}) == name) {
          queue_.Add(common::ObjectKey(other));
          break;
        }
      }
    }
  }
}

absl::StatusOr<std::optional<json>> KubeGitRepositoryRunner::Load(const std::string& key) {
  std::optional<json> cached = informer_->Get(key);
  if (!cached) return std::optional<json>();
  std::optional<json> written;
  {
    absl::MutexLock lock(&mu_);
    auto it = memory_.find(key);
    if (it != memory_.end() && it->second.uid == common::StringAt(*cached, {"metadata", "uid"})) {
      written = it->second.written_status;
    }
  }
  if (!written || StatusOf(*cached) == *written) return cached;
  // The watch has not delivered our last status write yet (or someone else
  // wrote status): read the object itself rather than work from old status.
  const auto [ns, name] = common::SplitObjectKey(key);
  auto live = client_.Get(kGitRepositoryGvk, ns, name);
  if (absl::IsNotFound(live.status())) return std::optional<json>();
  if (!live.ok()) return live.status();
  (*live)["apiVersion"] = kGitRepositoryGvk.ApiVersion();
  (*live)["kind"] = kGitRepositoryKind;
  return std::optional<json>(std::move(*live));
}

common::ReconcileResult KubeGitRepositoryRunner::ReconcileKey(const std::string& key) {
  auto loaded = Load(key);
  if (!loaded.ok()) return {loaded.status()};
  const auto [ns, name] = common::SplitObjectKey(key);
  if (!loaded->has_value()) {
    // Gone without our finalizer running (removed by hand, or never added):
    // still delete what we stored for it.
    bool known = false;
    {
      absl::MutexLock lock(&mu_);
      known = memory_.erase(key) > 0;
    }
    if (known) {
      GitRepository gone;
      gone.namespace_name = ns;
      gone.name = name;
      absl::Status s = reconciler_->Delete(gone);
      common::LogInfo("object gone; artifacts deleted", {{"kind", kGitRepositoryKind},
                                                         {"namespace", ns},
                                                         {"name", name},
                                                         {"error", s.message()}});
    }
    return {};
  }
  json obj = std::move(**loaded);
  {
    absl::MutexLock lock(&mu_);
    Memory& m = memory_[key];
    if (m.uid != common::StringAt(obj, {"metadata", "uid"})) {
      m = Memory{};
      m.uid = common::StringAt(obj, {"metadata", "uid"});
    }
  }

  // Step 1: deletion first, as Flux does.
  if (!common::StringAt(obj, {"metadata", "deletionTimestamp"}).empty()) return Finalize(key, obj);

  // Step 2: the finalizer before any artifact exists, so a deletion racing
  // the first run cannot leave artifacts behind.
  if (!common::HasFinalizer(obj, kSourceFinalizer)) {
    absl::Status s = common::AddFinalizer(client_, obj, kSourceFinalizer);
    if (!s.ok()) return {absl::Status(s.code(), absl::StrCat("add finalizer: ", s.message()))};
  }

  // Step 3: suspended objects are left alone until spec.suspend changes.
  const bool suspended = Suspended(obj);
  common::RecordSuspend(obj, suspended);
  if (suspended) {
    common::LogInfo("reconciliation is suspended for this object",
                    {{"kind", kGitRepositoryKind}, {"namespace", ns}, {"name", name}});
    return {};
  }

  const absl::Time now = absl::Now();
  auto parsed = ParseGitRepository(obj);
  if (!parsed.ok()) {
    // Nothing a retry can fix: Stalled until the spec changes.
    GitRepository repo = Skeleton(obj);
    std::string msg(parsed.status().message());
    auto& conds = repo.status.conditions;
    SetCondition(conds,
                 MakeCondition(kStalledCondition, "True", kInvalidSpecReason, msg, repo.generation),
                 now);
    SetCondition(conds,
                 MakeCondition(kReadyCondition, "False", kInvalidSpecReason, msg, repo.generation),
                 now);
    RemoveCondition(conds, kReconcilingCondition);
    repo.status.observed_generation = repo.generation;
    const std::string requested = RequestedAt(obj);
    if (!requested.empty()) repo.status.last_handled_reconcile_at = requested;
    common::LogError(
        "invalid GitRepository",
        {{"kind", kGitRepositoryKind}, {"namespace", ns}, {"name", name}, {"error", msg}});
    Emit(obj, common::kEventTypeWarning, kInvalidSpecReason, msg);
    absl::Status w = WriteStatus(key, obj, repo);
    return {w};
  }
  GitRepository repo = std::move(*parsed);
  repo.status = StatusFromJson(StatusOf(obj));
  const GitRepositoryStatus old_status = repo.status;

  // Step 4: what the run needs from the API, then the shared reconciler. The
  // in-progress status is written before long operations, as Flux does.
  ReconcileInputs inputs = Inputs(repo);
  inputs.requested_at = RequestedAt(obj);
  inputs.progress = [&](const GitRepository& progress) { return WriteStatus(key, obj, progress); };
  inputs.publish = false;
  ReconcileOutcome outcome = reconciler_->Reconcile(repo, inputs, now);

  // Step 5: one status patch, the stream (after the API, so both agree), then
  // the events (Flux's notify).
  absl::Status written = WriteStatus(key, obj, repo);
  if (written.ok()) reconciler_->Publish(repo);
  if (outcome.ok() && repo.status.artifact) {
    const ArtifactStatus& a = *repo.status.artifact;
    const std::string message =
        absl::StrCat("stored artifact for commit '",
                     outcome.commit_subject.empty() ? a.revision : outcome.commit_subject, "'");
    const bool new_digest = !old_status.artifact || old_status.artifact->digest != a.digest;
    bool recovered = false;
    for (const char* failure :
         {kFetchFailedCondition, kIncludeUnavailableCondition, kStorageOperationFailedCondition}) {
      if (FindCondition(old_status.conditions, failure) != nullptr) recovered = true;
    }
    // A new artifact: the fetch, checkout and pack just freed their buffers.
    if (new_digest) common::TrimFreedMemory();
    if (new_digest || recovered) {
      Emit(obj, common::kEventTypeNormal, new_digest ? kNewArtifactReason : kSucceededReason,
           message, {{kRevisionAnnotation, a.revision}, {kDigestAnnotation, a.digest}});
    }
  } else if (!outcome.ok() && outcome.kind != ReconcileKind::kWaiting) {
    // Waiting on another object is only logged (Flux: a trace event).
    Emit(obj, common::kEventTypeWarning,
         outcome.reason.empty() ? kGitOperationFailedReason : outcome.reason,
         outcome.error.message(),
         {{kRevisionAnnotation, old_status.artifact ? old_status.artifact->revision : ""}});
  }
  if (!written.ok()) return {written};

  // Step 6: requeue. A spec the user must fix waits for the fix (Stalled);
  // a missing dependency is looked at again after --requeue-dependency;
  // other failures retry with backoff; success comes back on the interval,
  // jittered so objects applied together do not poll together.
  switch (outcome.kind) {
    case ReconcileKind::kStalled:
      return {};
    case ReconcileKind::kWaiting:
      return {absl::OkStatus(), outcome.requeue_after};
    case ReconcileKind::kFailed:
      return {outcome.error};
    case ReconcileKind::kSuccess:
      break;
  }
  return {absl::OkStatus(), Jittered(repo.spec.interval)};
}

common::ReconcileResult KubeGitRepositoryRunner::Finalize(const std::string& key, json& obj) {
  const auto [ns, name] = common::SplitObjectKey(key);
  if (!common::HasFinalizer(obj, kSourceFinalizer)) return {};
  GitRepository repo = Skeleton(obj);
  absl::Status deleted = reconciler_->Delete(repo);
  if (!deleted.ok()) {
    common::LogError("cannot delete artifacts", {{"kind", kGitRepositoryKind},
                                                 {"namespace", ns},
                                                 {"name", name},
                                                 {"error", deleted.message()}});
    return {deleted};
  }
  absl::Status removed = common::RemoveFinalizer(client_, obj, kSourceFinalizer);
  if (common::IsConflict(removed)) {
    // Our copy was stale; the finalizer patch carries its resourceVersion.
    auto live = client_.Get(kGitRepositoryGvk, ns, name);
    if (live.ok()) {
      (*live)["apiVersion"] = kGitRepositoryGvk.ApiVersion();
      (*live)["kind"] = kGitRepositoryKind;
      obj = std::move(*live);
      removed = common::RemoveFinalizer(client_, obj, kSourceFinalizer);
    } else {
      removed = live.status();
    }
  }
  if (!removed.ok() && !absl::IsNotFound(removed)) {
    return {absl::Status(removed.code(), absl::StrCat("remove finalizer: ", removed.message()))};
  }
  {
    absl::MutexLock lock(&mu_);
    memory_.erase(key);
  }
  common::RecordDeleted(obj);
  common::LogInfo("artifacts deleted and finalizer removed",
                  {{"kind", kGitRepositoryKind}, {"namespace", ns}, {"name", name}});
  return {};
}

absl::StatusOr<std::map<std::string, std::string>> KubeGitRepositoryRunner::SecretData(
    const std::string& namespace_name, const std::string& name) {
  auto secret = client_.Get(kSecretGvk, namespace_name, name);
  if (!secret.ok()) {
    // Flux's message; the API error never carries the Secret's data.
    std::string cause = absl::IsNotFound(secret.status())
                            ? absl::StrCat("secrets \"", name, "\" not found")
                            : std::string(secret.status().message());
    return absl::Status(
        secret.status().code(),
        absl::StrCat("failed to get secret '", namespace_name, "/", name, "': ", cause));
  }
  return DecodeSecretData(*secret);
}

ReconcileInputs KubeGitRepositoryRunner::Inputs(const GitRepository& repo) {
  const std::string& ns = repo.namespace_name;
  InputSources sources;
  sources.secret = [&](const std::string& name) { return SecretData(ns, name); };
  sources.repository = [&](const std::string& name) -> absl::StatusOr<GitRepositoryStatus> {
    std::optional<json> dep = informer_->Get(absl::StrCat(ns, "/", name));
    if (!dep) {
      return absl::NotFoundError(
          absl::StrCat("gitrepositories.source.toolkit.fluxcd.io \"", name, "\" not found"));
    }
    return StatusFromJson(StatusOf(*dep));
  };
  return GatherInputs(repo, sources);
}

absl::Duration KubeGitRepositoryRunner::Jittered(absl::Duration interval) {
  const int percent = std::clamp(options_.interval_jitter_percent, 0, 99);
  if (percent == 0) return interval;
  absl::MutexLock lock(&mu_);
  std::uniform_real_distribution<double> spread(-percent / 100.0, percent / 100.0);
  return interval + interval * spread(rng_);
}

absl::Status KubeGitRepositoryRunner::WriteStatus(const std::string& key, json& obj,
                                                  const GitRepository& repo) {
  json status = StatusToJson(repo.status);
  const json before_status = StatusOf(obj);
  // Fields this controller does not model are carried over untouched.
  if (before_status.is_object()) {
    for (auto it = before_status.begin(); it != before_status.end(); ++it) {
      if (!status.contains(it.key()) && !kModeledStatusFields.count(it.key())) {
        status[it.key()] = it.value();
      }
    }
  }

  json after = obj;
  after["status"] = status;
  absl::Status s = common::PatchStatus(client_, obj, after, options_.controller_name);
  if (!s.ok()) {
    common::LogError("cannot patch status", {{"kind", kGitRepositoryKind},
                                             {"namespace", repo.namespace_name},
                                             {"name", repo.name},
                                             {"error", s.message()}});
    return absl::Status(s.code(), absl::StrCat("patch status: ", s.message()));
  }
  // What the server has now is the base of the next write in this run (an
  // in-progress write followed by the final one).
  after["apiVersion"] = kGitRepositoryGvk.ApiVersion();
  after["kind"] = kGitRepositoryKind;
  obj = std::move(after);
  absl::MutexLock lock(&mu_);
  Memory& m = memory_[key];
  m.written_status = StatusOf(obj);
  return absl::OkStatus();
}

void KubeGitRepositoryRunner::Emit(const json& obj, absl::string_view type,
                                   absl::string_view reason, absl::string_view message,
                                   const std::map<std::string, std::string>& annotations) {
  if (events_ == nullptr) return;
  std::map<std::string, std::string> a;
  for (const auto& [k, v] : annotations) {
    if (!v.empty()) a[k] = v;
  }
  events_->Event(obj, type, reason, message, a);
}

}  // namespace gitops::source
