#include "source-controller/controller/sources_file.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "common/yaml/yaml.h"

namespace gitops::source {
namespace fs = std::filesystem;

namespace {

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read sources file ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Flux requeues on the interval; a little jitter keeps 1,000 sources with the
// same interval from hitting the remotes in one burst.
absl::Time NextRun(absl::Time now, absl::Duration interval) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.95, 1.05);
  return now + interval * jitter(rng);
}

}  // namespace

SourcesFileRunner::SourcesFileRunner(SourcesFileOptions options,
                                     GitRepositoryReconciler* reconciler)
    : options_(std::move(options)), reconciler_(reconciler) {}

SourcesFileRunner::~SourcesFileRunner() { Stop(); }

std::string SourcesFileRunner::StatePath(const std::string& ns, const std::string& name) const {
  return (fs::path(options_.state_root) / ns / (name + ".json")).string();
}

absl::Status SourcesFileRunner::Start() {
  absl::Status loaded = Load(/*initial=*/true);
  if (!loaded.ok()) return loaded;
  int workers = std::max(1, options_.workers);
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  threads_.emplace_back([this] { WatchLoop(); });
  return absl::OkStatus();
}

void SourcesFileRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

bool SourcesFileRunner::Get(const std::string& ns, const std::string& name,
                            GitRepository* out) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(absl::StrCat(ns, "/", name));
  if (it == entries_.end() || it->second.removed) return false;
  *out = it->second.repo;
  return true;
}

size_t SourcesFileRunner::size() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [k, e] : entries_) n += e.removed ? 0 : 1;
  return n;
}

absl::Status SourcesFileRunner::Load(bool initial) {
  auto text = ReadAll(options_.path);
  if (!text.ok()) return text.status();
  std::string digest = common::Sha256Digest(*text);
  {
    absl::MutexLock lock(&mu_);
    if (!initial && digest == file_digest_) return absl::OkStatus();
    // Remember this content even if it turns out invalid: it is reported
    // once, not on every poll, and the last good set keeps running.
    file_digest_ = digest;
  }
  auto docs = common::ParseYamlDocuments(*text, options_.path);
  if (!docs.ok()) return docs.status();

  std::map<std::string, GitRepository> repos;
  std::map<std::string, nlohmann::json> specs;
  std::map<std::string, std::map<std::string, std::string>> secrets;
  for (size_t i = 0; i < docs->size(); ++i) {
    const nlohmann::json& doc = (*docs)[i];
    std::string kind = common::StringField(doc, "kind");
    if (kind == "Secret") {
      const nlohmann::json meta = doc.contains("metadata") ? doc["metadata"] : nlohmann::json();
      std::string ns = common::StringField(meta, "namespace", "default");
      secrets[absl::StrCat(ns, "/", common::StringField(meta, "name"))] = DecodeSecretData(doc);
      continue;
    }
    if (kind != kGitRepositoryKind) {
      common::LogError(
          "skipping unsupported document in sources file",
          {{"file", options_.path}, {"document", std::to_string(i + 1)}, {"kind", kind}});
      continue;
    }
    auto repo = ParseGitRepository(doc);
    if (!repo.ok()) {
      std::string who =
          doc.contains("metadata") ? common::StringField(doc["metadata"], "name", "?") : "?";
      // Reject the whole file, at start-up and on reloads alike: skipping
      // only this document would read as "removed" below and delete the
      // source's artifacts. The caller keeps the last good set.
      return absl::InvalidArgumentError(
          absl::StrCat(options_.path, ": GitRepository ", who, ": ", repo.status().message()));
    }
    std::string key = absl::StrCat(repo->namespace_name, "/", repo->name);
    specs[key] = doc["spec"];
    repos[key] = std::move(*repo);
  }

  std::vector<GitRepository> to_delete;
  {
    absl::MutexLock lock(&mu_);
    bool secrets_changed = secrets != secrets_;
    secrets_ = std::move(secrets);
    absl::Time now = absl::Now();
    for (auto& [key, repo] : repos) {
      auto it = entries_.find(key);
      if (it == entries_.end() || it->second.removed) {
        Entry e;
        e.repo = std::move(repo);
        e.spec_json = specs[key];
        // Restore the persisted status so the stored artifact is announced
        // at once after a restart.
        auto state = ReadAll(StatePath(e.repo.namespace_name, e.repo.name));
        if (state.ok()) {
          nlohmann::json j = nlohmann::json::parse(*state, nullptr, /*allow_exceptions=*/false);
          if (!j.is_discarded()) {
            e.repo.status = StatusFromJson(j.contains("status") ? j["status"] : nlohmann::json());
            e.repo.generation =
                std::max<int64_t>(e.repo.generation, common::IntField(j, "generation", 1));
            if ((j.contains("spec") ? j["spec"] : nlohmann::json()) != e.spec_json)
              ++e.repo.generation;
            reconciler_->Restore(e.repo);
          }
        }
        e.next_run = now;
        entries_[key] = std::move(e);
      } else if (it->second.spec_json != specs[key]) {
        // A spec change runs at once, as a generation bump does in Flux.
        GitRepositoryStatus status = std::move(it->second.repo.status);
        int64_t generation = it->second.repo.generation + 1;
        it->second.repo = std::move(repo);
        it->second.repo.status = std::move(status);
        it->second.repo.generation = generation;
        it->second.spec_json = specs[key];
        it->second.next_run = now;
      } else if (secrets_changed && !it->second.repo.spec.secret_name.empty()) {
        it->second.next_run = now;
      }
    }
    ++wake_;  // idle workers re-check what is due now
    for (auto& [key, entry] : entries_) {
      if (!entry.removed && repos.count(key) == 0) {
        entry.removed = true;
        to_delete.push_back(entry.repo);
      }
    }
  }
  for (const auto& repo : to_delete) {
    absl::Status s = reconciler_->Delete(repo);
    std::error_code ec;
    fs::remove(StatePath(repo.namespace_name, repo.name), ec);
    common::LogInfo("source removed from sources file; artifacts deleted",
                    {{"kind", kGitRepositoryKind},
                     {"namespace", repo.namespace_name},
                     {"name", repo.name},
                     {"error", s.ok() ? "" : std::string(s.message())}});
  }
  {
    absl::MutexLock lock(&mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.removed && !it->second.running) {
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  common::LogInfo("sources file loaded",
                  {{"file", options_.path}, {"gitrepositories", std::to_string(repos.size())}});
  return absl::OkStatus();
}

ReconcileInputs SourcesFileRunner::InputsFor(const GitRepository& repo) const {
  const std::string& ns = repo.namespace_name;
  InputSources sources;
  sources.secret = [&](const std::string& name)
                       ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::StatusOr<SecretMap> {
    auto it = secrets_.find(absl::StrCat(ns, "/", name));
    if (it == secrets_.end()) {
      return absl::NotFoundError(
          absl::StrCat("failed to get secret '", ns, "/", name, "': not found"));
    }
    return it->second;
  };
  sources.repository = [&](const std::string& name)
                           ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::StatusOr<GitRepositoryStatus> {
    auto it = entries_.find(absl::StrCat(ns, "/", name));
    if (it == entries_.end() || it->second.removed) {
      return absl::NotFoundError(
          absl::StrCat("GitRepository '", ns, "/", name, "' not found in ", options_.path));
    }
    return it->second.repo.status;
  };
  // Called with mu_ held (InputsFor requires it); the lookups run inside.
  return GatherInputs(repo, sources);
}

void SourcesFileRunner::WorkerLoop() {
  while (true) {
    std::string key;
    GitRepository repo;
    ReconcileInputs inputs;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (stopping_) return;
        absl::Time now = absl::Now();
        absl::Time earliest = now + options_.idle_tick;
        Entry* due = nullptr;
        for (auto& [k, e] : entries_) {
          if (e.running || e.removed || e.repo.spec.suspend) continue;
          if (e.next_run <= now && (due == nullptr || e.next_run < due->next_run)) {
            due = &e;
            key = k;
          }
          earliest = std::min(earliest, e.next_run);
        }
        if (due != nullptr) {
          due->running = true;
          repo = due->repo;
          inputs = InputsFor(repo);
          break;
        }
        const uint64_t seen = wake_;
        auto wake = [this, seen]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wake_ != seen; };
        mu_.AwaitWithDeadline(absl::Condition(&wake),
                              std::max(earliest, now + absl::Milliseconds(5)));
      }
    }
    absl::Time now = absl::Now();
    const nlohmann::json before = StatusToJson(repo.status);
    const std::string digest_before = repo.status.artifact ? repo.status.artifact->digest : "";
    const ReconcileOutcome outcome = reconciler_->Reconcile(repo, inputs, now);
    // A reconcile that changed nothing (the common case) writes nothing.
    if (StatusToJson(repo.status) != before) Persist(repo);
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    Entry& e = it->second;
    e.running = false;
    if (e.removed) {
      // Deleted while we worked: undo what this run stored.
      mu_.Unlock();
      reconciler_->Delete(repo).IgnoreError();
      // Persist above may have re-created the state file Load removed.
      std::error_code ec;
      fs::remove(StatePath(repo.namespace_name, repo.name), ec);
      mu_.Lock();
      entries_.erase(key);
      continue;
    }
    if (repo.status.artifact && repo.status.artifact->digest != digest_before) {
      // A new artifact: the sources that include this one rebuild now.
      for (auto& [other_key, other] : entries_) {
        if (other.repo.namespace_name != repo.namespace_name) continue;
        for (const GitRepositoryInclude& inc : other.repo.spec.include) {
          if (inc.repository == repo.name) other.next_run = absl::Now();
        }
      }
      ++wake_;
    }
    if (e.repo.generation == repo.generation) {
      e.repo.status = repo.status;
      e.next_run = outcome.kind == ReconcileKind::kWaiting
                       ? absl::Now() + outcome.requeue_after
                       : NextRun(absl::Now(), e.repo.spec.interval);
    } else {
      // The spec changed while we worked: keep what we learned, run again now.
      e.repo.status = repo.status;
      e.next_run = absl::Now();
      ++wake_;
    }
  }
}

void SourcesFileRunner::WatchLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&wake), options_.poll_interval);
      if (stopping_) return;
    }
    absl::Status s = Load(/*initial=*/false);
    if (!s.ok()) {
      common::LogError("cannot reload sources file; keeping the previous sources",
                       {{"file", options_.path}, {"error", s.message()}});
    }
  }
}

void SourcesFileRunner::Persist(const GitRepository& repo) {
  nlohmann::json j;
  j["generation"] = repo.generation;
  j["status"] = StatusToJson(repo.status);
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(absl::StrCat(repo.namespace_name, "/", repo.name));
    if (it != entries_.end()) j["spec"] = it->second.spec_json;
  }
  std::string path = StatePath(repo.namespace_name, repo.name);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) {
      common::LogError("cannot persist status", {{"path", path}});
      return;
    }
  }
  fs::rename(tmp, path, ec);
}

}  // namespace gitops::source
