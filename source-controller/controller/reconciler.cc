#include "source-controller/controller/reconciler.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/archive/extract.h"
#include "common/fs/confined.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/status/status_macros.h"
#include "source-controller/artifact/ignore.h"
#include "source-controller/artifact/packer.h"
#include "source-controller/git/git_url.h"
#include "source-controller/verify/verify.h"

namespace gitops::source {
namespace fs = std::filesystem;

namespace {

constexpr char kDurationMetric[] = "gotk_reconcile_duration_seconds";
constexpr char kConditionMetric[] = "gotk_reconcile_condition";
constexpr char kPatchOperationFailedReason[] = "PatchOperationFailed";

// Flux's Ready summary for GitRepository (gitRepositoryReadyCondition): the
// conditions in priority order, and whether True means trouble.
struct SummaryEntry {
  const char* type;
  bool negative;
};
constexpr SummaryEntry kReadySummary[] = {
    {kStorageOperationFailedCondition, true},
    {kFetchFailedCondition, true},
    {kIncludeUnavailableCondition, true},
    {kArtifactOutdatedCondition, true},
    {kArtifactInStorageCondition, false},
    {kSourceVerifiedCondition, false},
    {kStalledCondition, true},
    {kReconcilingCondition, true},
};

bool SameArtifacts(const std::vector<ArtifactStatus>& a, const std::vector<ArtifactStatus>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].SameContent(b[i])) return false;
  }
  return true;
}

// Messages about a checkout name paths inside the repository, not the
// controller's work directory ("mkdir x: File exists", not
// "mkdir /data/.work/checkout-XYZ/tree/x: ...").
std::string InRepository(absl::string_view message, const fs::path& checkout,
                         const fs::path& work) {
  std::string out = absl::StrReplaceAll(message, {{checkout.string() + "/", ""}});
  out = absl::StrReplaceAll(out, {{checkout.string(), "."}});
  out = absl::StrReplaceAll(out, {{work.string() + "/", ""}});
  return absl::StrReplaceAll(out, {{work.string(), "."}});
}

// The tree's size as --artifact-max-size counts it (the checkout's
// measure): file contents plus kCheckoutEntryBytes per entry.
absl::StatusOr<int64_t> TreeBytes(const fs::path& root, int64_t stop_after) {
  int64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    total += kCheckoutEntryBytes;
    if (!it->is_symlink(ec) && it->is_regular_file(ec)) {
      total += static_cast<int64_t>(it->file_size(ec));
    }
    if (total > stop_after) return total;
  }
  if (ec) return absl::InternalError(absl::StrCat("walk ", root.string(), ": ", ec.message()));
  return total;
}

// What a remembered size refusal depends on besides the spec (generation)
// and the revision: the included artifacts.
std::string IncludesKey(const std::vector<ArtifactStatus>& includes) {
  std::string key;
  for (const ArtifactStatus& a : includes) absl::StrAppend(&key, a.digest, ";");
  return key;
}

// Flux's AuthOptions.Validate: what each transport needs before any
// connection is tried.
absl::Status ValidateAuthOptions(absl::string_view scheme, const GitCredentials& c) {
  if (scheme == "ssh") {
    if (c.ssh_identity.empty()) {
      return absl::InvalidArgumentError("invalid 'ssh' auth option: 'identity' is required");
    }
    if (c.ssh_known_hosts.empty()) {
      return absl::InvalidArgumentError("invalid 'ssh' auth option: 'known_hosts' is required");
    }
  } else if (scheme == "http" || scheme == "https") {
    if (c.username.empty() && !c.password.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid '", scheme, "' auth option: 'password' requires 'username' to be set"));
    }
    // fluxcd/pkg gogit validateUrlAndAuthOptions (a bearerToken Secret with
    // a user name in the url).
    if (!c.bearer_token.empty() && (!c.username.empty() || !c.password.empty())) {
      return absl::InvalidArgumentError(
          "basic auth and bearer token cannot be set at the same time");
    }
  }
  return absl::OkStatus();
}

}  // namespace

SourceKey KeyOf(const GitRepository& repo) {
  return SourceKey{kGitRepositoryKind, repo.namespace_name, repo.name};
}

ReconcileInputs GatherInputs(const GitRepository& repo, const InputSources& sources) {
  ReconcileInputs in;
  if (!repo.spec.secret_name.empty()) {
    auto data = sources.secret(repo.spec.secret_name);
    if (data.ok()) {
      in.credentials = CredentialsFromSecretData(*data);
    } else {
      in.credentials = data.status();
    }
  }
  if (!repo.spec.proxy_secret_name.empty()) {
    auto data = sources.secret(repo.spec.proxy_secret_name);
    if (data.ok()) {
      in.proxy = ProxyFromSecretData(*data, repo.namespace_name, repo.spec.proxy_secret_name);
    } else {
      in.proxy = data.status();
    }
  }
  if (repo.spec.verify) in.verify_keys = sources.secret(repo.spec.verify->secret_name);
  for (const GitRepositoryInclude& inc : repo.spec.include) {
    auto dep = sources.repository(inc.repository);
    if (!dep.ok()) {
      in.includes.push_back(dep.status());
    } else if (!dep->artifact) {
      in.includes.push_back(absl::FailedPreconditionError("no artifact"));
    } else {
      in.includes.push_back(*dep->artifact);
    }
  }
  return in;
}

std::string CommitSubject(absl::string_view message) {
  absl::string_view subject = message.substr(0, message.find('\n'));
  // Flux counts runes; count UTF-8 code points the same way.
  size_t runes = 0;
  for (size_t i = 0; i < subject.size(); ++i) {
    if ((static_cast<unsigned char>(subject[i]) & 0xC0) == 0x80) continue;
    if (runes == 50) return absl::StrCat(subject.substr(0, i), "...");
    ++runes;
  }
  return std::string(subject);
}

// One reconcile of one object: Flux's sub-reconcilers (storage, source,
// include, artifact) in order, then the summary.
class GitRepositoryReconciler::Run {
 public:
  Run(GitRepositoryReconciler& r, GitRepository& repo, const ReconcileInputs& in, absl::Time now)
      : r_(r),
        repo_(repo),
        in_(in),
        now_(now),
        key_(KeyOf(repo)),
        written_(repo.status.conditions) {}

  ReconcileOutcome Execute();

 private:
  void Mark(absl::string_view type, absl::string_view status, absl::string_view reason,
            absl::string_view message) {
    SetCondition(repo_.status.conditions,
                 MakeCondition(type, status, reason, message, repo_.generation), now_);
  }
  void Delete(absl::string_view type) { RemoveCondition(repo_.status.conditions, type); }
  bool Is(absl::string_view type, absl::string_view status) const {
    const Condition* c = FindCondition(repo_.status.conditions, type);
    return c != nullptr && c->status == status;
  }
  // Flux's rreconcile.ProgressiveStatus: Reconciling=True always; Ready
  // turns Unknown only on drift (no artifact yet, a new revision or new
  // includes to build) or when it was not known anyway. A retry of a failing
  // object keeps Ready=False while it starts over, and a routine re-check of
  // a ready one keeps Ready=True.
  enum class Drift { kNo, kYes };
  void Progressive(Drift drift, absl::string_view message) {
    Delete(kStalledCondition);
    Mark(kReconcilingCondition, "True", kProgressingReason, message);
    const Condition* ready = FindCondition(repo_.status.conditions, kReadyCondition);
    if (drift == Drift::kYes || ready == nullptr || ready->status == "Unknown") {
      Mark(kReadyCondition, "Unknown", kProgressingReason, message);
    }
  }
  // Flux writes the in-progress status at each of these points; we write
  // the latest one just before the next slow step (remote check, fetch,
  // pack), which shows the same states for as long as they last, with fewer
  // requests (a new object: 3 writes instead of 4).
  void Progressing() { progress_pending_ = true; }
  // Writes pending in-progress status; false (with *out set) when that
  // failed.
  bool Flush(ReconcileOutcome* out) {
    if (!progress_pending_ || !in_.progress) return true;
    progress_pending_ = false;
    absl::Status s = in_.progress(repo_);
    if (s.ok()) {
      written_ = repo_.status.conditions;
      return true;
    }
    *out = Failure(ReconcileKind::kFailed, kPatchOperationFailedReason, s);
    return false;
  }
  static ReconcileOutcome Failure(ReconcileKind kind, absl::string_view reason,
                                  absl::Status error) {
    ReconcileOutcome o;
    o.kind = kind;
    o.reason = std::string(reason);
    o.error = std::move(error);
    return o;
  }
  // Marks `condition` True with `reason` and `message`, and fails the run.
  ReconcileOutcome Fail(ReconcileKind kind, absl::string_view condition, absl::string_view reason,
                        absl::StatusCode code, absl::string_view message) {
    Mark(condition, "True", reason, message);
    return Failure(kind, reason, absl::Status(code, message));
  }
  // Flux retries every clone failure with backoff, a bad semver range or
  // an unusable CA included: the remote or the Secret may change.
  ReconcileOutcome GitFailure(const absl::Status& s) {
    return Fail(ReconcileKind::kFailed, kFetchFailedCondition, kGitOperationFailedReason, s.code(),
                absl::StrCat("failed to checkout and determine revision: ", s.message()));
  }
  // Refuses `revision` for size (--artifact-max-size): removes the
  // source's git cache (whatever the refused revision brought in goes
  // with it; the next fetch starts afresh) and remembers the refusal, so
  // retries of the same revision fail fast. StorageOperationFailed with
  // Flux's archive reason, retried with backoff: a new upstream commit
  // can fix it, which Stalled would never look at.
  ReconcileOutcome RefuseForSize(const fs::path& cache, const std::string& revision,
                                 absl::string_view detail, const std::string& includes_key) {
    std::error_code ec;
    fs::remove_all(cache, ec);
    if (ec) {
      common::LogError("cannot remove the git cache of a refused revision",
                       {{"kind", kGitRepositoryKind},
                        {"namespace", repo_.namespace_name},
                        {"name", repo_.name},
                        {"error", ec.message()}});
    }
    const std::string message =
        absl::StrCat("unable to archive artifact to storage: revision '", revision,
                     "' is over the limit set by --artifact-max-size (",
                     r_.options_.max_artifact_size, " bytes): ", detail);
    if (!revision.empty()) {
      r_.SetRefusal(key_, Refusal{repo_.generation, includes_key, revision, message});
    }
    return SizeFailure(message);
  }
  ReconcileOutcome SizeFailure(const std::string& message) {
    return Fail(ReconcileKind::kFailed, kStorageOperationFailedCondition,
                kArchiveOperationFailedReason, absl::StatusCode::kResourceExhausted, message);
  }
  // Flux's gitContentConfigChanged: anything besides the commit that shapes
  // the artifact differs from what the stored one was built with.
  bool ContentConfigChanged(const std::vector<ArtifactStatus>& includes) const;
  bool RequiresVerification() const;
  // Flux's verifySignature; false (with *out set) on failure.
  bool Verify(const std::string& git_dir, const GitRevision& rev, ReconcileOutcome* out);
  // Copies the included artifacts into the checkout; false with *out on failure.
  bool CopyIncludes(const fs::path& checkout, const fs::path& work,
                    const std::vector<ArtifactStatus>& includes, ReconcileOutcome* out);
  ReconcileOutcome Summarize(ReconcileOutcome o);

  GitRepositoryReconciler& r_;
  GitRepository& repo_;
  const ReconcileInputs& in_;
  const absl::Time now_;
  const SourceKey key_;
  // The conditions as the API server has them (at the start, or as the last
  // progress patch wrote them).
  std::vector<Condition> written_;
  bool progress_pending_ = false;
};

bool GitRepositoryReconciler::Run::RequiresVerification() const {
  if (!repo_.spec.verify) return false;
  const auto& observed = repo_.status.source_verification_mode;
  if (!observed) return true;
  auto was = ParseVerificationMode(*observed);
  auto want = ParseVerificationMode(repo_.spec.verify->mode);
  if (!was.ok() || !want.ok()) return true;
  // Flux: verified only the tag and now the HEAD too (or the reverse).
  return (*was == VerificationMode::kTag && *want != VerificationMode::kTag) ||
         (*was == VerificationMode::kHead && *want != VerificationMode::kHead);
}

bool GitRepositoryReconciler::Run::ContentConfigChanged(
    const std::vector<ArtifactStatus>& includes) const {
  const GitRepositorySpec& spec = repo_.spec;
  const GitRepositoryStatus& status = repo_.status;
  if (spec.ignore != status.observed_ignore) return true;
  if (spec.recurse_submodules != status.observed_recurse_submodules) return true;
  if (spec.include != status.observed_include) return true;
  if (RequiresVerification()) return true;
  const std::vector<std::string> none;
  if (spec.sparse_checkout.value_or(none) != status.observed_sparse_checkout.value_or(none)) {
    return true;
  }
  return !SameArtifacts(includes, status.included_artifacts);
}

bool GitRepositoryReconciler::Run::Verify(const std::string& git_dir, const GitRevision& rev,
                                          ReconcileOutcome* out) {
  if (!repo_.spec.verify) {
    repo_.status.source_verification_mode.reset();
    Delete(kSourceVerifiedCondition);
    return true;
  }
  auto fail = [&](ReconcileKind kind, absl::string_view reason, const absl::Status& error) {
    Mark(kSourceVerifiedCondition, "False", reason, error.message());
    *out = Failure(kind, reason, error);
    return false;
  };
  if (!in_.verify_keys.ok()) {
    return fail(ReconcileKind::kFailed, kVerificationErrorReason,
                absl::Status(in_.verify_keys.status().code(),
                             absl::StrCat("public keys secret error: ",
                                          in_.verify_keys.status().message())));
  }
  auto mode = ParseVerificationMode(repo_.spec.verify->mode);
  if (!mode.ok()) return fail(ReconcileKind::kStalled, kVerificationErrorReason, mode.status());
  const std::string tag_ref = absl::StartsWith(rev.ref, "refs/tags/") ? rev.ref : "";
  SourceVerification v = VerifySource(git_dir, *mode, rev.commit, tag_ref, *in_.verify_keys);
  if (!v.status.ok()) {
    return fail(v.stalled ? ReconcileKind::kStalled : ReconcileKind::kFailed, v.reason, v.status);
  }
  repo_.status.source_verification_mode = repo_.spec.verify->mode;
  Mark(kSourceVerifiedCondition, "True", kSucceededReason, v.message);
  common::LogInfo(
      v.message,
      {{"kind", kGitRepositoryKind}, {"namespace", repo_.namespace_name}, {"name", repo_.name}});
  return true;
}

bool GitRepositoryReconciler::Run::CopyIncludes(const fs::path& checkout, const fs::path& work,
                                                const std::vector<ArtifactStatus>& includes,
                                                ReconcileOutcome* out) {
  for (size_t i = 0; i < repo_.spec.include.size(); ++i) {
    const GitRepositoryInclude& inc = repo_.spec.include[i];
    auto fail = [&](absl::string_view reason, const std::string& message) {
      *out = Fail(ReconcileKind::kFailed, kStorageOperationFailedCondition, reason,
                  absl::StatusCode::kInternal, message);
      return false;
    };
    auto illegal = [&](absl::string_view why) {
      return fail("IllegalPath", absl::StrCat("path calculation for include '", inc.repository,
                                              "' failed: ", why));
    };
    auto copy_error = [&](absl::string_view why) {
      return fail("CopyFailure",
                  absl::StrCat("failed to copy '", inc.repository, "' include from ", inc.from_path,
                               " to ", inc.ToPath(), ": ", InRepository(why, checkout, work)));
    };
    // toPath is confined to the checkout as Flux's securejoin does (".."
    // stops at the root), and a symlink committed in the repository is
    // refused rather than followed: written through, it took the copy into
    // other namespaces' storage, the git caches or anywhere else.
    const std::vector<std::string> to = common::SplitClean(inc.ToPath());
    if (to.empty()) {
      return illegal(absl::StrCat("toPath '", inc.ToPath(), "' is the artifact root"));
    }
    common::UniqueFd checkout_fd(open(checkout.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!checkout_fd.valid()) return copy_error(strerror(errno));
    auto to_link = common::FirstSymlink(checkout_fd.get(), to);
    if (!to_link.ok()) return copy_error(to_link.status().message());
    if (to_link->has_value()) {
      return illegal(absl::StrCat("toPath '", inc.ToPath(), "' crosses the symbolic link '",
                                  **to_link, "' in the repository"));
    }
    // Pin the included artifact while it is unpacked: GC cannot take it.
    auto reader = r_.deps_.storage->Open(
        SourceKey{kGitRepositoryKind, repo_.namespace_name, inc.repository}, includes[i].digest);
    if (!reader.ok()) return copy_error(reader.status().message());
    const std::string unpack_name = absl::StrCat("include-", i);
    const fs::path unpack = work / unpack_name;
    absl::Status extracted = common::ExtractTarGz(
        (fs::path(r_.deps_.storage->root()) / (*reader)->artifact().path).string(), unpack.string(),
        common::ExtractLimits{});
    if (!extracted.ok()) return copy_error(extracted.message());

    // fromPath: the same rules inside the unpacked artifact.
    const std::vector<std::string> from = common::SplitClean(inc.from_path);
    common::UniqueFd work_fd(open(work.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!work_fd.valid()) return copy_error(strerror(errno));
    std::vector<std::string> from_in_work = {unpack_name};
    from_in_work.insert(from_in_work.end(), from.begin(), from.end());
    auto from_link = common::FirstSymlink(work_fd.get(), from_in_work);
    if (!from_link.ok()) return copy_error(from_link.status().message());
    if (from_link->has_value()) {
      return copy_error(absl::StrCat("fromPath '", inc.from_path, "' crosses the symbolic link '",
                                     absl::StripPrefix(**from_link, absl::StrCat(unpack_name, "/")),
                                     "' in the artifact"));
    }
    const std::string from_name = from_in_work.back();
    from_in_work.pop_back();
    auto from_parent = common::OpenDirBeneath(work_fd.get(), from_in_work, /*create=*/false);
    struct stat st;
    if (!from_parent.ok() ||
        fstatat(from_parent->get(), from_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode)) {
      return copy_error(absl::StrCat("'", inc.from_path, "' is not a directory in the artifact"));
    }

    // The destination's parents are created one by one without following a
    // symlink (race-free: what FirstSymlink checked is enforced here).
    const std::string to_name = to.back();
    auto to_parent = common::OpenDirBeneath(checkout_fd.get(),
                                            std::vector<std::string>(to.begin(), to.end() - 1),
                                            /*create=*/true);
    if (!to_parent.ok()) {
      if (absl::IsFailedPrecondition(to_parent.status()) &&
          absl::StrContains(to_parent.status().message(), "symbolic link")) {
        return illegal(absl::StrCat("toPath '", inc.ToPath(), "': ", to_parent.status().message()));
      }
      return copy_error(to_parent.status().message());
    }
    // Like Flux's rename: an empty directory in the way is replaced, a
    // non-empty one is an error.
    if (fstatat(to_parent->get(), to_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(st.st_mode)) {
        return illegal(absl::StrCat("toPath '", inc.ToPath(), "' crosses the symbolic link '",
                                    absl::StrJoin(to, "/"), "' in the repository"));
      }
      if (S_ISDIR(st.st_mode)) unlinkat(to_parent->get(), to_name.c_str(), AT_REMOVEDIR);
    }
    if (renameat(from_parent->get(), from_name.c_str(), to_parent->get(), to_name.c_str()) != 0) {
      return copy_error(absl::StrCat("'", absl::StrJoin(to, "/"), "': ", strerror(errno)));
    }
  }
  Delete(kIncludeUnavailableCondition);
  return true;
}

ReconcileOutcome GitRepositoryReconciler::Run::Summarize(ReconcileOutcome o) {
  auto& conds = repo_.status.conditions;
  if (o.ok()) {
    Delete(kReconcilingCondition);
    Delete(kStalledCondition);
    repo_.status.observed_generation = repo_.generation;
  } else {
    if (Condition* rec = const_cast<Condition*>(FindCondition(conds, kReconcilingCondition))) {
      rec->reason = kProgressingWithRetryReason;
    }
    if (o.kind == ReconcileKind::kStalled) {
      Mark(kStalledCondition, "True", o.reason, o.error.message());
      Delete(kReconcilingCondition);
      repo_.status.observed_generation = repo_.generation;
    } else {
      Delete(kStalledCondition);
    }
  }
  // Ready: the first condition in trouble, else the first unknown, else the
  // first good one; a failed SourceVerified (positive in either polarity)
  // wins over all of them, as in Flux.
  const Condition* bad = nullptr;
  const Condition* unknown = nullptr;
  const Condition* good = nullptr;
  for (const SummaryEntry& e : kReadySummary) {
    const Condition* c = FindCondition(conds, e.type);
    if (c == nullptr) continue;
    if (c->status == (e.negative ? "True" : "False")) {
      if (bad == nullptr) bad = c;
    } else if (c->status == "Unknown") {
      if (unknown == nullptr) unknown = c;
    } else if (!e.negative && good == nullptr) {
      good = c;
    }
  }
  if (const Condition* v = FindCondition(conds, kSourceVerifiedCondition);
      v != nullptr && v->status == "False") {
    bad = v;
  }
  const Condition* top = bad != nullptr ? bad : unknown != nullptr ? unknown : good;
  if (top != nullptr) {
    const std::string status = top == bad ? "False" : top == unknown ? "Unknown" : "True";
    const Condition summary =
        MakeCondition(kReadyCondition, status, top->reason, top->message, repo_.generation);
    SetCondition(conds, summary, now_);
  }
  // A condition that ends the run as it was written keeps its
  // lastTransitionTime, even if it flipped in between (Ready goes Unknown
  // while in progress): Flux's patch helper compares conditions without
  // their timestamps, so it writes nothing for them.
  for (Condition& c : conds) {
    for (const Condition& w : written_) {
      if (w.type == c.type && w.status == c.status && w.reason == c.reason &&
          w.message == c.message && w.observed_generation == c.observed_generation) {
        c.last_transition_time = w.last_transition_time;
      }
    }
  }
  if (!in_.requested_at.empty()) repo_.status.last_handled_reconcile_at = in_.requested_at;
  if (!o.ok()) {
    common::LogError("reconciliation failed", {{"kind", kGitRepositoryKind},
                                               {"namespace", repo_.namespace_name},
                                               {"name", repo_.name},
                                               {"reason", o.reason},
                                               {"error", o.error.message()}});
  }
  return o;
}

ReconcileOutcome GitRepositoryReconciler::Run::Execute() {
  GitRepositoryStatus& status = repo_.status;
  const GitRepositorySpec& spec = repo_.spec;
  ReconcileOutcome out;

  // Persist Reconciling when the generation moved or a reconcile was asked.
  Progressive(Drift::kNo, "reconciliation in progress");
  if (repo_.generation != status.observed_generation) {
    Progressive(Drift::kNo, absl::StrCat("processing object: new generation ",
                                         status.observed_generation, " -> ", repo_.generation));
    Progressing();
  } else if (in_.requested_at != status.last_handled_reconcile_at) {
    Progressing();
  }

  // Storage: the recorded artifact must still be there.
  bool missing = false;
  if (status.artifact && !r_.deps_.storage->Open(key_, status.artifact->digest).ok()) {
    status.artifact.reset();
    missing = true;
  }
  if (!status.artifact) {
    Progressive(Drift::kYes,
                missing ? "building artifact: disappeared from storage" : "building artifact");
    Delete(kArtifactInStorageCondition);
    Progressing();
  } else {
    // The advertised address may have changed since it was written.
    status.artifact->url = r_.ArtifactUrl(status.artifact->path);
  }

  // Source.
  if (Is(kSourceVerifiedCondition, "False")) Delete(kSourceVerifiedCondition);
  if (!in_.proxy.ok()) {
    return Summarize(
        Fail(ReconcileKind::kFailed, kFetchFailedCondition, kAuthenticationFailedReason,
             in_.proxy.status().code(),
             absl::StrCat("failed to configure proxy options: ", in_.proxy.status().message())));
  }
  auto url = ParseGitUrl(spec.url);
  if (!url.ok()) {
    return Summarize(Fail(ReconcileKind::kStalled, kFetchFailedCondition, kURLInvalidReason,
                          url.status().code(), url.status().message()));
  }
  if (!in_.credentials.ok()) {
    return Summarize(Fail(ReconcileKind::kFailed, kFetchFailedCondition,
                          kAuthenticationFailedReason, in_.credentials.status().code(),
                          in_.credentials.status().message()));
  }
  // Flux's NewAuthOptions: the url's userinfo fills in what the Secret lacks.
  const GitCredentials credentials = WithUrlCredentials(*url, *in_.credentials);
  if (absl::Status valid = ValidateAuthOptions(url->scheme, credentials); !valid.ok()) {
    return Summarize(Fail(
        ReconcileKind::kFailed, kFetchFailedCondition, kAuthenticationFailedReason, valid.code(),
        absl::StrCat("failed to configure authentication options: ", valid.message())));
  }
  std::vector<ArtifactStatus> includes;
  for (size_t i = 0; i < spec.include.size(); ++i) {
    const absl::StatusOr<ArtifactStatus>* inc =
        i < in_.includes.size() ? &in_.includes[i] : nullptr;
    if (inc == nullptr || !inc->ok()) {
      const bool not_found = inc == nullptr || absl::IsNotFound(inc->status());
      const std::string& name = spec.include[i].repository;
      std::string message =
          not_found ? absl::StrCat("could not get resource for include '", name,
                                   "': ", inc ? inc->status().message() : "not resolved")
                    : absl::StrCat("no artifact available for include '", name, "'");
      ReconcileOutcome o = Fail(ReconcileKind::kWaiting, kIncludeUnavailableCondition,
                                not_found ? "NotFound" : "NoArtifact",
                                absl::StatusCode::kFailedPrecondition, message);
      o.requeue_after = r_.options_.requeue_dependency;
      return Summarize(o);
    }
    includes.push_back(**inc);
  }
  Delete(kIncludeUnavailableCondition);
  if (!SameArtifacts(includes, status.included_artifacts)) {
    constexpr char kMessage[] = "included artifacts differ from last observed includes";
    if (!status.included_artifacts.empty()) {
      Mark(kArtifactOutdatedCondition, "True", kIncludeChangeReason, kMessage);
    }
    Progressive(Drift::kYes, absl::StrCat("building artifact: ", kMessage));
    Progressing();
    // Written now: ArtifactOutdated goes again right below, as in Flux.
    if (!Flush(&out)) return Summarize(out);
  }
  Delete(kArtifactOutdatedCondition);

  GitFetchOptions fetch;
  fetch.url = spec.url;
  fetch.ref = spec.ref;
  fetch.credentials = credentials;
  fetch.timeout = spec.timeout;
  fetch.proxy = *in_.proxy;
  fetch.recurse_submodules = spec.recurse_submodules;
  if (spec.sparse_checkout) fetch.sparse_checkout = *spec.sparse_checkout;

  fetch.max_checkout_bytes = r_.options_.max_artifact_size;

  // A revision refused for size before, with the same spec and includes:
  // if the remote still has it, fail again without fetching (issue 17: a
  // git bomb was fetched and written out again on every retry).
  const std::string includes_key = IncludesKey(includes);
  std::optional<Refusal> refused = r_.FindRefusal(key_);
  if (refused && (refused->generation != repo_.generation || refused->includes != includes_key)) {
    refused.reset();
  }

  // The cheap remote check (Flux's optimized clone): same revision, same
  // content configuration, artifact stored -> nothing to fetch or pack.
  if (status.artifact || refused) {
    if (!Flush(&out)) return Summarize(out);
    auto remote = r_.deps_.git->ResolveRemote(fetch);
    if (!remote.ok()) return Summarize(GitFailure(remote.status()));
    if (refused && remote->revision == refused->revision) {
      common::LogDebug("revision refused for size before: not fetched again",
                       {{"kind", kGitRepositoryKind},
                        {"namespace", repo_.namespace_name},
                        {"name", repo_.name},
                        {"revision", remote->revision}});
      return Summarize(SizeFailure(refused->message));
    }
    if (status.artifact && remote->revision == status.artifact->revision &&
        !ContentConfigChanged(includes)) {
      Delete(kFetchFailedCondition);
      Mark(kArtifactInStorageCondition, "True", kSucceededReason,
           absl::StrCat("stored artifact for revision '", remote->revision, "'"));
      if (in_.publish) r_.Publish(repo_);
      common::LogDebug(absl::StrCat("no changes since last reconciliation: observed revision '",
                                    remote->revision, "'"),
                       {{"kind", kGitRepositoryKind},
                        {"namespace", repo_.namespace_name},
                        {"name", repo_.name},
                        {"revision", remote->revision}});
      return Summarize(out);
    }
  }

  // Fetch incrementally into the per-source cache and check out.
  const fs::path cache =
      fs::path(r_.options_.cache_root) / "gitrepository" / repo_.namespace_name / repo_.name;
  std::error_code ec;
  fs::create_directories(r_.options_.work_root, ec);
  std::string work_template = (fs::path(r_.options_.work_root) / "checkout-XXXXXX").string();
  if (::mkdtemp(work_template.data()) == nullptr) {
    return Summarize(Fail(ReconcileKind::kFailed, kStorageOperationFailedCondition,
                          kDirCreationFailedReason, absl::StatusCode::kInternal,
                          absl::StrCat("failed to create temporary working directory: ",
                                       std::error_code(errno, std::generic_category()).message())));
  }
  const fs::path work = work_template;
  // The checkout holds whatever the repository committed (symlinks to
  // anywhere): removed without following any of them.
  struct RemoveWork {
    fs::path dir;
    ~RemoveWork() {
      absl::Status s = common::RemoveTree(dir.string());
      if (!s.ok()) {
        common::LogError("cannot remove work directory",
                         {{"path", dir.string()}, {"error", s.message()}});
      }
    }
  } remove_work{work};
  const fs::path checkout = work / "tree";
  // The cache directory must be a real directory at every level: a symlink
  // there would take the fetch, and its removal on deletion, elsewhere.
  fs::create_directories(r_.options_.cache_root, ec);
  if (auto dir = common::OpenDirBeneath(r_.options_.cache_root,
                                        {"gitrepository", repo_.namespace_name, repo_.name}, true);
      !dir.ok()) {
    return Summarize(
        Fail(ReconcileKind::kFailed, kStorageOperationFailedCondition, kDirCreationFailedReason,
             dir.status().code(),
             absl::StrCat("failed to create git cache directory: ", dir.status().message())));
  }
  if (!Flush(&out)) return Summarize(out);
  // spec.timeout bounds the fetch, the checkout and the pack together.
  const absl::Time deadline = absl::Now() + spec.timeout;
  auto fetched = r_.deps_.git->FetchAndCheckout(fetch, cache.string(), checkout.string());
  if (!fetched.ok()) {
    const absl::Status& e = fetched.status();
    const std::string message = InRepository(e.message(), checkout, work);
    if (absl::IsResourceExhausted(e) && r_.options_.max_artifact_size > 0) {
      return Summarize(RefuseForSize(cache, RevisionOfFailure(e), message, includes_key));
    }
    return Summarize(GitFailure(absl::Status(e.code(), message)));
  }
  Delete(kFetchFailedCondition);
  out.commit_subject = CommitSubject(fetched->message);

  // A sparse checkout of a directory the commit lacks failed in the fetch
  // (NotFound, Flux's "sparse checkout dir '...' does not exist" wording).
  if (!Verify(cache.string(), *fetched, &out)) return Summarize(out);

  if (!status.artifact || status.artifact->revision != fetched->revision) {
    const std::string message = absl::StrCat("new upstream revision '", fetched->revision, "'");
    if (status.artifact) Mark(kArtifactOutdatedCondition, "True", kNewRevisionReason, message);
    Progressive(Drift::kYes, absl::StrCat("building artifact: ", message));
    Progressing();
  }
  if (!Flush(&out)) return Summarize(out);

  // Include: the other GitRepositories' artifacts, copied in.
  if (!CopyIncludes(checkout, work, includes, &out)) return Summarize(out);

  // Artifact.
  const std::string stored_message =
      absl::StrCat("stored artifact for revision '", fetched->revision, "'");
  if (status.artifact && status.artifact->revision == fetched->revision &&
      !ContentConfigChanged(includes)) {
    Delete(kArtifactOutdatedCondition);
    Mark(kArtifactInStorageCondition, "True", kSucceededReason, stored_message);
    return Summarize(out);
  }
  auto storage_failure = [&](absl::string_view reason, absl::string_view prefix,
                             const absl::Status& s) {
    return Summarize(Fail(ReconcileKind::kFailed, kStorageOperationFailedCondition, reason,
                          s.code(),
                          absl::StrCat(prefix, InRepository(s.message(), checkout, work))));
  };
  if (r_.options_.max_artifact_size > 0) {
    auto bytes = TreeBytes(checkout, r_.options_.max_artifact_size);
    if (!bytes.ok()) {
      return storage_failure(kArchiveOperationFailedReason,
                             "unable to archive artifact to storage: ", bytes.status());
    }
    if (*bytes > r_.options_.max_artifact_size) {
      // The checkout fitted; the included artifacts made it too big.
      return Summarize(
          RefuseForSize(cache, fetched->revision,
                        absl::StrCat("with the included artifacts the files add up to more than ",
                                     r_.options_.max_artifact_size, " bytes (file contents plus ",
                                     kCheckoutEntryBytes, " bytes per entry)"),
                        includes_key));
    }
  }
  // Ignore files are the repository's: bounded, regular files only, and
  // within the reconcile's time (spec.timeout, as for the fetch).
  IgnoreLoadOptions ignore_options;
  if (spec.timeout > absl::ZeroDuration()) ignore_options.deadline = absl::Now() + spec.timeout;
  auto ignore = LoadIgnoreRules(checkout.string(), spec.ignore, ignore_options);
  if (!ignore.ok()) {
    return storage_failure(
        "SourceIgnoreError",
        "failed to load source ignore patterns from repository: ", ignore.status());
  }
  // Flux's reasons: a new source cannot create its directory, an existing
  // one cannot write the archive.
  const bool had_dir = fs::is_directory(
      fs::path(r_.deps_.storage->root()) / fs::path(ArtifactPath(key_, "x")).parent_path(), ec);
  auto temp = r_.deps_.storage->NewTempPath(key_);
  if (!temp.ok()) {
    if (had_dir) {
      return storage_failure(kArchiveOperationFailedReason,
                             "unable to archive artifact to storage: ", temp.status());
    }
    return storage_failure(kDirCreationFailedReason,
                           "failed to create artifact directory: ", temp.status());
  }
  PackOptions pack_options;
  pack_options.deadline = deadline;
  pack_options.timeout = spec.timeout;
  auto packed = PackDirectory(checkout.string(), *ignore, *temp, pack_options);
  if (!packed.ok()) {
    fs::remove(*temp, ec);
    return storage_failure(kArchiveOperationFailedReason,
                           "unable to archive artifact to storage: ", packed.status());
  }
  auto stored = r_.deps_.storage->Commit(key_, *temp, packed->digest);
  if (!stored.ok()) {
    fs::remove(*temp, ec);
    return storage_failure(kArchiveOperationFailedReason,
                           "unable to archive artifact to storage: ", stored.status());
  }

  ArtifactStatus artifact;
  artifact.path = stored->path;
  artifact.url = r_.ArtifactUrl(stored->path);
  artifact.revision = fetched->revision;
  artifact.digest = stored->digest;
  artifact.size = stored->size;
  artifact.last_update_time = now_;
  // The same bytes again (e.g. a commit that only touched ignored files
  // keeps the digest): keep the time the content last changed.
  if (status.artifact && status.artifact->digest == artifact.digest &&
      status.artifact->path == artifact.path) {
    artifact.last_update_time = status.artifact->last_update_time;
  }
  status.artifact = artifact;
  status.included_artifacts = includes;
  status.observed_ignore = spec.ignore;
  status.observed_recurse_submodules = spec.recurse_submodules;
  status.observed_include = spec.include;
  status.observed_sparse_checkout = spec.sparse_checkout;
  Delete(kStorageOperationFailedCondition);
  Delete(kArtifactOutdatedCondition);
  Mark(kArtifactInStorageCondition, "True", kSucceededReason, stored_message);
  r_.SetRefusal(key_, std::nullopt);
  if (in_.publish) r_.Publish(repo_);

  auto removed = r_.deps_.storage->GarbageCollect(
      key_, stored->digest, r_.options_.retention_records, r_.options_.retention_ttl, now_);
  if (!removed.ok()) {
    common::LogError("garbage collection failed", {{"kind", kGitRepositoryKind},
                                                   {"namespace", repo_.namespace_name},
                                                   {"name", repo_.name},
                                                   {"error", removed.status().message()}});
  }
  common::LogInfo(stored_message,
                  {{"kind", kGitRepositoryKind},
                   {"namespace", repo_.namespace_name},
                   {"name", repo_.name},
                   {"revision", fetched->revision},
                   {"digest", stored->digest},
                   {"size", std::to_string(stored->size)},
                   {"files", std::to_string(packed->files)},
                   {"received_objects", std::to_string(fetched->received_objects)}});
  return Summarize(out);
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

absl::Status GitRepositoryReconciler::Reconcile(GitRepository& repo,
                                                const GitCredentials& credentials, absl::Time now) {
  ReconcileInputs inputs;
  inputs.credentials = credentials;
  return Reconcile(repo, inputs, now).error;
}

ReconcileOutcome GitRepositoryReconciler::Reconcile(GitRepository& repo,
                                                    const ReconcileInputs& inputs, absl::Time now) {
  if (repo.spec.suspend) return {};
  const absl::Time started = absl::Now();
  ReconcileOutcome outcome = Run(*this, repo, inputs, now).Execute();

  common::MetricLabels labels{
      {"kind", kGitRepositoryKind}, {"name", repo.name}, {"namespace", repo.namespace_name}};
  common::Metrics::Global().Observe(kDurationMetric, labels,
                                    absl::ToDoubleSeconds(absl::Now() - started));
  const Condition* ready = FindCondition(repo.status.conditions, kReadyCondition);
  for (const char* st : {"True", "False", "Unknown"}) {
    common::MetricLabels l = labels;
    l.push_back({"type", kReadyCondition});
    l.push_back({"status", st});
    common::Metrics::Global().Set(kConditionMetric, l, ready && ready->status == st ? 1 : 0);
  }
  return outcome;
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
  for (const auto& [k, v] : a.metadata) (*msg.mutable_metadata())[k] = v;
  deps_.hub->PublishUpdated(msg);
}

bool GitRepositoryReconciler::Restore(const GitRepository& repo) {
  if (!repo.status.artifact) return false;
  auto reader = deps_.storage->Open(KeyOf(repo), repo.status.artifact->digest);
  if (!reader.ok()) return false;
  Publish(repo);
  return true;
}

std::optional<GitRepositoryReconciler::Refusal> GitRepositoryReconciler::FindRefusal(
    const SourceKey& key) const {
  absl::MutexLock lock(&refused_mu_);
  auto it = refused_.find(absl::StrCat(key.namespace_name, "/", key.name));
  if (it == refused_.end()) return std::nullopt;
  return it->second;
}

void GitRepositoryReconciler::SetRefusal(const SourceKey& key, std::optional<Refusal> refusal) {
  const std::string k = absl::StrCat(key.namespace_name, "/", key.name);
  absl::MutexLock lock(&refused_mu_);
  if (refusal) {
    refused_[k] = *std::move(refusal);
  } else {
    refused_.erase(k);
  }
}

absl::Status GitRepositoryReconciler::Delete(const GitRepository& repo) {
  SetRefusal(KeyOf(repo), std::nullopt);
  v1::SourceReference ref;
  ref.set_kind(kGitRepositoryKind);
  ref.set_namespace_(repo.namespace_name);
  ref.set_name(repo.name);
  deps_.hub->PublishDeleted(ref);
  // Neither removal follows a symlink at any level.
  absl::Status cache =
      common::RemoveBeneath(options_.cache_root, {"gitrepository", repo.namespace_name, repo.name});
  absl::Status stored = deps_.storage->RemoveAll(KeyOf(repo));
  if (!cache.ok()) return common::Annotate(cache, "remove git cache");
  return stored;
}

absl::StatusOr<SourceListing> GitRepositoryReconciler::StoredSources() const {
  return deps_.storage->ListSources(kGitRepositoryKind);
}

}  // namespace gitops::source
