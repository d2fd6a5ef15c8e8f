// Cluster-less mode: GitRepository (and Secret) manifests read from a file,
// re-read when it changes, each source reconciled on its interval. Status is
// persisted beside the storage so a restart announces the stored artifacts
// at once, without refetching.
#ifndef GITOPS_SOURCE_CONTROLLER_CONTROLLER_SOURCES_FILE_H_
#define GITOPS_SOURCE_CONTROLLER_CONTROLLER_SOURCES_FILE_H_

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "source-controller/controller/git_repository.h"
#include "source-controller/controller/reconciler.h"

namespace gitops::source {

struct SourcesFileOptions {
  std::string path;
  // Persisted status, one JSON file per source.
  std::string state_root;
  int workers = 2;
  // How often the file is checked for changes.
  absl::Duration poll_interval = absl::Seconds(1);
  // The longest an idle worker sleeps before it looks for due sources on its
  // own; it is woken at once when a source becomes due by an edit.
  absl::Duration idle_tick = absl::Seconds(1);
};

// Thread-safe. Owns its threads; Stop() joins them.
class SourcesFileRunner {
 public:
  SourcesFileRunner(SourcesFileOptions options, GitRepositoryReconciler* reconciler);
  ~SourcesFileRunner();

  // Loads the file (an unreadable or invalid file is an error here, at
  // start-up, but only logged on later reloads, keeping the last good set),
  // restores persisted status, and starts the workers.
  absl::Status Start();
  // Lets in-flight reconciles finish, then stops. Idempotent.
  void Stop();

  // A copy of a source's current state, for tests and introspection.
  bool Get(const std::string& namespace_name, const std::string& name, GitRepository* out) const;
  // Number of sources loaded.
  size_t size() const;

 private:
  struct Entry {
    GitRepository repo;
    nlohmann::json spec_json;
    absl::Time next_run;
    bool running = false;
    bool removed = false;
  };

  absl::Status Load(bool initial);
  void WorkerLoop();
  void WatchLoop();
  void Persist(const GitRepository& repo);
  std::string StatePath(const std::string& ns, const std::string& name) const;
  using SecretMap = std::map<std::string, std::string>;
  // The Secrets and included artifacts the spec refers to, from the file.
  ReconcileInputs InputsFor(const GitRepository& repo) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SourcesFileOptions options_;
  GitRepositoryReconciler* const reconciler_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);  // key "ns/name"
  // Secrets by "ns/name": Flux keys to values.
  std::map<std::string, std::map<std::string, std::string>> secrets_ ABSL_GUARDED_BY(mu_);
  std::string file_digest_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped whenever a source becomes due at once; wakes idle workers.
  uint64_t wake_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace gitops::source

#endif  // GITOPS_SOURCE_CONTROLLER_CONTROLLER_SOURCES_FILE_H_
